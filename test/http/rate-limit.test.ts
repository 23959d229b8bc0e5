import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/http/app";
import { keyHeaders, newAccount, newBatch, urls } from "../helpers";

/** A limiter that refuses, and remembers what it was asked to count. */
function refusingLimiter() {
  const keys: string[] = [];
  return { keys, limiter: { limit: async ({ key }: { key: string }) => (keys.push(key), { success: false }) } };
}

describe("per-key rate limits", () => {
  it.each([
    ["POST", "/api/batch/scrape", "CREATE_LIMITER"],
    ["DELETE", "/api/batch/scrape/BATCH", "CANCEL_LIMITER"],
    ["POST", "/api/batch/scrape/cancel-all", "CANCEL_LIMITER"],
    ["GET", "/live/batches/BATCH/stop", "CANCEL_LIMITER"],
    ["GET", "/live/batches/stopall", "CANCEL_LIMITER"],
  ] as const)(
    "%s %s answers 429 with Retry-After when %s says no, counting by key id",
    async (method, rawPath, binding) => {
      const { apiKey, keyId } = await newAccount(100);
      const { batchId } = await newBatch(apiKey, 1);
      const { keys, limiter } = refusingLimiter();
      const res = await createApp().request(
        rawPath.replace("BATCH", batchId),
        {
          method,
          headers: keyHeaders(apiKey),
          body: method === "POST" ? JSON.stringify({ urls: urls(1) }) : undefined,
        },
        { ...env, [binding]: limiter },
      );
      expect(res.status).toBe(429);
      expect(res.headers.get("retry-after")).toBe("60");
      const body = await res.json<Record<string, unknown>>();
      if (rawPath.startsWith("/live/"))
        expect(body).toEqual({
          request_info: { success: false, message: "Too many requests for this API key; slow down and retry." },
        });
      else expect(body).toMatchObject({ status: "error", code: "RATE_LIMITED" });
      expect(keys).toEqual([keyId]);
    },
  );

  it("reads are not rate limited, and a refused create reserves nothing", async () => {
    const { apiKey } = await newAccount(100);
    const { keys, limiter } = refusingLimiter();
    const app = createApp();
    const e = { ...env, CREATE_LIMITER: limiter, CANCEL_LIMITER: limiter };
    expect((await app.request("/api/credits", { headers: keyHeaders(apiKey) }, e)).status).toBe(200);
    expect(
      (
        await app.request(
          "/api/batch/scrape",
          { method: "POST", headers: keyHeaders(apiKey), body: JSON.stringify({ urls: urls(3) }) },
          e,
        )
      ).status,
    ).toBe(429);
    expect(await (await app.request("/api/credits", { headers: keyHeaders(apiKey) }, e)).json()).toMatchObject({
      balance: 100,
      reserved: 0,
    });
    expect(keys).toHaveLength(1);
  });
});

describe("cap on batches in flight per account", () => {
  it("refuses a new batch with 429 TOO_MANY_ACTIVE_BATCHES while the account has MAX_ACTIVE_BATCHES active, reserving nothing", async () => {
    const { apiKey } = await newAccount(100);
    const app = createApp();
    const e = { ...env, MAX_ACTIVE_BATCHES: "2" };
    const create = () =>
      app.request(
        "/api/batch/scrape",
        { method: "POST", headers: keyHeaders(apiKey), body: JSON.stringify({ urls: urls(1) }) },
        e,
      );
    const first = await (await create()).json<{ batchId: string }>();
    expect((await create()).status).toBe(202);
    const third = await create();
    expect(third.status).toBe(429);
    expect(await third.json()).toMatchObject({ status: "error", code: "TOO_MANY_ACTIVE_BATCHES" });
    expect(await (await app.request("/api/credits", { headers: keyHeaders(apiKey) }, e)).json()).toMatchObject({
      balance: 96,
      reserved: 4,
    });
    // Once one is no longer active, there is room again.
    await app.request(`/api/batch/scrape/${first.batchId}`, { method: "DELETE", headers: keyHeaders(apiKey) }, e);
    expect((await create()).status).toBe(202);
  });
});
