/**
 * `Authorization: Bearer <api key>` on the public API, beside x-api-key (src/http/auth.ts):
 * it works wherever x-api-key does; the admin token and API keys are never taken for each
 * other; a malformed Bearer is refused like a missing or bad key; two different keys in one
 * request are refused with 400; failed Bearer authentications count against the same limits.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Env } from "../../src/env";
import { bearerToken, readApiKey } from "../../src/http/auth";
import { createApp } from "../../src/http/app";
import { ADMIN_TOKEN, adminHeaders, callJson, getCredits, newAccount, newBatch, urls } from "../helpers";
import { addKey, badMacKey, expectError, revokeKey } from "./support";

const bearer = (key: string) => ({ authorization: `Bearer ${key}`, "content-type": "application/json" });

describe("Bearer API keys on /api/*", () => {
  it("create, read, list, cancel and credits all work with Authorization: Bearer alone", async () => {
    const { apiKey } = await newAccount(100);
    const created = await callJson("/api/batch/scrape", {
      method: "POST",
      headers: bearer(apiKey),
      body: JSON.stringify({ urls: urls(2) }),
    });
    expect(created.status).toBe(202);
    const batchId = created.body.batchId;
    const read = await callJson(`/api/batch/scrape/${batchId}`, { headers: bearer(apiKey) });
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ batchId, totalUrls: 2 });
    expect((await callJson("/api/batch/scrape", { headers: bearer(apiKey) })).body.pagination.total).toBe(1);
    const cancelled = await callJson(`/api/batch/scrape/${batchId}`, { method: "DELETE", headers: bearer(apiKey) });
    expect(cancelled.body).toEqual({ status: "cancelled", cancelledItems: 2, creditsRefunded: 4 });
    const credits = await callJson("/api/credits", { headers: bearer(apiKey) });
    expect(credits.body).toMatchObject({ balance: 100, reserved: 0 });
  });

  it("the scheme is case-insensitive and surrounding spaces do not matter", async () => {
    const { apiKey } = await newAccount(10);
    for (const authorization of [`bearer ${apiKey}`, `BEARER   ${apiKey}`, ` Bearer ${apiKey} `]) {
      expect((await callJson("/api/credits", { headers: { authorization } })).status).toBe(200);
    }
  });

  it("the admin token as a Bearer on /api/* is not an API key: 403, and nothing is done", async () => {
    const { apiKey } = await newAccount(10);
    const r = await callJson("/api/batch/scrape", {
      method: "POST",
      headers: bearer(ADMIN_TOKEN),
      body: JSON.stringify({ urls: urls(1) }),
    });
    expectError(r, 403, "INVALID_API_KEY");
    expectError(await callJson("/api/credits", { headers: bearer(ADMIN_TOKEN) }), 403, "INVALID_API_KEY");
    expect(await getCredits(apiKey)).toMatchObject({ balance: 10, reserved: 0 });
  });

  it("an API key as a Bearer on /admin/* is not the admin token: 401, and nothing is done", async () => {
    const { accountId, keyId, apiKey } = await newAccount(10);
    const grant = await callJson(`/admin/accounts/${accountId}/credits`, {
      method: "POST",
      headers: bearer(apiKey),
      body: JSON.stringify({ amount: 1000 }),
    });
    expectError(grant, 401, "UNAUTHORIZED");
    const revoke = await callJson(`/admin/accounts/${accountId}/keys/${keyId}`, {
      method: "DELETE",
      headers: bearer(apiKey),
    });
    expectError(revoke, 401, "UNAUTHORIZED");
    // Nor as x-api-key on an admin route.
    const read = await callJson(`/admin/accounts/${accountId}`, { headers: { "x-api-key": apiKey } });
    expectError(read, 401, "UNAUTHORIZED");
    expect(await getCredits(apiKey)).toMatchObject({ balance: 10, granted: 10 });
    const account = await callJson(`/admin/accounts/${accountId}`, { headers: adminHeaders });
    expect(account.body.keys).toEqual([expect.objectContaining({ keyId, revokedAt: null })]);
  });

  it.each([
    ["Bearer with no token", "Bearer", 401, "MISSING_API_KEY"],
    ["Bearer with only spaces", "Bearer    ", 401, "MISSING_API_KEY"],
    ["another scheme (Basic)", "Basic dXNlcjpwYXNz", 401, "MISSING_API_KEY"],
    ["a Bearer token that is not a key", "Bearer not-a-key", 403, "INVALID_API_KEY"],
    ["a key with junk after it", "Bearer KEY extra", 403, "INVALID_API_KEY"],
    ["no space after the scheme", "BearerKEY", 401, "MISSING_API_KEY"],
  ])("a malformed Authorization (%s) is refused", async (_label, authorization, status, code) => {
    const { apiKey } = await newAccount(10);
    const r = await callJson("/api/credits", { headers: { authorization: authorization.replace("KEY", apiKey) } });
    expectError(r, status, code);
  });

  it("x-api-key and a Bearer with different keys are refused with 400, even when both are valid; nothing is done", async () => {
    const { accountId, apiKey } = await newAccount(100);
    const other = await addKey(accountId);
    const r = await callJson("/api/batch/scrape", {
      method: "POST",
      headers: { "x-api-key": apiKey, authorization: `Bearer ${other.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({ urls: urls(1) }),
    });
    expectError(r, 400, "CONFLICTING_API_KEYS");
    expect(await getCredits(apiKey)).toMatchObject({ balance: 100, reserved: 0 });
    // A valid key beside a bad one is refused the same way: no guessing which one counts.
    const mixed = await callJson("/api/credits", {
      headers: { "x-api-key": apiKey, authorization: `Bearer ${badMacKey()}` },
    });
    expectError(mixed, 400, "CONFLICTING_API_KEYS");
  });

  it("the same key in both headers is fine", async () => {
    const { apiKey } = await newAccount(10);
    const r = await callJson("/api/credits", { headers: { "x-api-key": apiKey, authorization: `Bearer ${apiKey}` } });
    expect(r.status).toBe(200);
  });

  it("a revoked key is refused as a Bearer too", async () => {
    const { accountId } = await newAccount(10);
    const k = await addKey(accountId);
    expect((await callJson("/api/credits", { headers: bearer(k.apiKey) })).status).toBe(200);
    await revokeKey(accountId, k.keyId);
    expectError(await callJson("/api/credits", { headers: bearer(k.apiKey) }), 403, "INVALID_API_KEY");
  });
});

describe("failed Bearer authentications count against the same limits", () => {
  function limiter(allow: number) {
    const keys: string[] = [];
    const counts = new Map<string, number>();
    return {
      keys,
      binding: {
        limit: async ({ key }: { key: string }) => {
          keys.push(key);
          const n = (counts.get(key) ?? 0) + 1;
          counts.set(key, n);
          return { success: n <= allow };
        },
      },
    };
  }
  const address = () => `203.0.${Math.floor(Math.random() * 256)}.${Math.floor(Math.random() * 256)}`;
  async function send(e: Partial<Env>, path: string, headers: Record<string, string>, ip: string) {
    const res = await createApp().request(path, { headers: { ...headers, "cf-connecting-ip": ip } }, { ...env, ...e });
    return { status: res.status, body: await res.json<any>(), res };
  }

  it("per address: made-up Bearer keys and the admin token are counted, then 429 even for a good key", async () => {
    const ip = limiter(2);
    const { apiKey } = await newAccount(10);
    const from = address();
    const e = { FAILED_AUTH_IP_LIMITER: ip.binding };
    expect((await send(e, "/api/credits", bearer(badMacKey()), from)).status).toBe(403);
    expect((await send(e, "/api/credits", bearer(ADMIN_TOKEN), from)).status).toBe(403);
    const third = await send(e, "/api/credits", bearer(badMacKey()), from);
    expectError(third, 429, "RATE_LIMITED");
    expect(third.res.headers.get("retry-after")).toBe("60");
    expect((await send(e, "/api/credits", bearer(apiKey), from)).status).toBe(429);
    expect(ip.keys.every((k) => k === from)).toBe(true);
    expect((await send(e, "/api/credits", bearer(apiKey), address())).status).toBe(200);
  });

  it("per key id: a revoked key sent as a Bearer from many addresses is cut at the key's limit", async () => {
    const keyLimiter = limiter(2);
    const { accountId } = await newAccount(10);
    const dead = await addKey(accountId);
    await revokeKey(accountId, dead.keyId);
    const e = { FAILED_AUTH_KEY_LIMITER: keyLimiter.binding };
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await send(e, "/api/credits", bearer(dead.apiKey), address())).status);
    expect(statuses).toEqual([403, 403, 429, 429, 429]);
    expect(new Set(keyLimiter.keys)).toEqual(new Set([dead.keyId]));
  });

  it("a successful Bearer request is never counted as a failure", async () => {
    const ip = limiter(Infinity);
    const key = limiter(Infinity);
    const { apiKey } = await newAccount(10);
    const e = { FAILED_AUTH_IP_LIMITER: ip.binding, FAILED_AUTH_KEY_LIMITER: key.binding };
    for (let i = 0; i < 3; i++) expect((await send(e, "/api/credits", bearer(apiKey), address())).status).toBe(200);
    expect([ip.keys, key.keys]).toEqual([[], []]);
  });
});

describe("the SerpWow surface keeps its own key style", () => {
  it("?api_key= still works, and a Bearer works there too", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 2);
    const byQuery = await callJson(`/live/batches/${batchId}?api_key=${encodeURIComponent(apiKey)}`);
    expect(byQuery.status).toBe(200);
    expect(byQuery.body.batch.id).toBe(batchId);
    const byBearer = await callJson(`/live/batches/${batchId}`, { headers: bearer(apiKey) });
    expect(byBearer.status).toBe(200);
    const stopped = await callJson(`/live/batches/${batchId}/stop?api_key=${encodeURIComponent(apiKey)}`);
    expect(stopped.status).toBe(200);
    expect(stopped.body.cancelled_items).toBe(2);
  });

  it("?api_key= and a header with another key: 400 in SerpWow's envelope", async () => {
    const { accountId, apiKey } = await newAccount(10);
    const other = await addKey(accountId);
    const r = await callJson(`/live/batches?api_key=${encodeURIComponent(apiKey)}`, { headers: bearer(other.apiKey) });
    expect(r.status).toBe(400);
    expect(r.body).toEqual({
      request_info: { success: false, message: expect.stringMatching(/two different API keys/) },
    });
  });

  it("?api_key= is not read on /api/*", async () => {
    const { apiKey } = await newAccount(10);
    expectError(await callJson(`/api/credits?api_key=${encodeURIComponent(apiKey)}`), 401, "MISSING_API_KEY");
  });
});

describe("readApiKey (for other surfaces, e.g. a Bearer-only one)", () => {
  const source = (headers: Record<string, string>, query: Record<string, string> = {}) => ({
    header: (n: string) => headers[n.toLowerCase()],
    query: (n: string) => query[n],
  });

  it("reads each place, and only where allowed", () => {
    expect(readApiKey(source({ "x-api-key": "k1" }))).toBe("k1");
    expect(readApiKey(source({ authorization: "Bearer k2" }))).toBe("k2");
    expect(readApiKey(source({}, { api_key: "k3" }))).toBeUndefined();
    expect(readApiKey(source({}, { api_key: "k3" }), { allowQueryKey: true })).toBe("k3");
    expect(readApiKey(source({ upgrade: "websocket", "sec-websocket-protocol": "batch-live, k4" }))).toBe("k4");
    expect(readApiKey(source({ "sec-websocket-protocol": "batch-live, k4" }))).toBeUndefined();
    expect(readApiKey(source({ "x-api-key": "", authorization: "Bearer k5" }))).toBe("k5");
    expect(readApiKey(source({}))).toBeUndefined();
  });

  it("refuses two different keys wherever they come from", () => {
    expect(() => readApiKey(source({ "x-api-key": "a", authorization: "Bearer b" }))).toThrow(/two different/);
    expect(() => readApiKey(source({ "x-api-key": "a" }, { api_key: "b" }), { allowQueryKey: true })).toThrow(
      /two different/,
    );
    expect(readApiKey(source({ "x-api-key": "a", authorization: "Bearer a" }))).toBe("a");
  });

  it("bearerToken", () => {
    expect(bearerToken(undefined)).toBeUndefined();
    expect(bearerToken("Basic abc")).toBeUndefined();
    expect(bearerToken("Bearer")).toBe("");
    expect(bearerToken("bearer  abc ")).toBe("abc");
  });
});
