/** Abuse limits: request size (413) on every route that takes a body; rate limits and caps (see below). */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/http/app";
import { adminHeaders, call, callJson, getCredits, keyHeaders, newAccount, newBatch } from "../helpers";
import { expectNoStack } from "../http/support";
import { count, reportFigures } from "./figures";

reportFigures("abuse");

const MAX_BODY_BYTES = 3 * 1024 * 1024;

describe("request size limits", () => {
  it("a body one byte over MAX_BODY_BYTES is refused with 413 on every operation that takes a body, before anything happens", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 1);
    const doc = (await callJson("/openapi.json")).body as {
      paths: Record<
        string,
        Record<
          string,
          {
            requestBody?: unknown;
            security?: Record<string, unknown>[];
            responses: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }>;
          }
        >
      >;
    };
    const withBody = Object.entries(doc.paths).flatMap(([template, methods]) =>
      Object.entries(methods)
        .filter(([, spec]) => spec.requestBody !== undefined)
        .map(([method, spec]) => ({
          method: method.toUpperCase(),
          template,
          admin: (spec.security ?? []).some((s) => "AdminToken" in s),
          // Each surface answers in its own envelope: ours, or Firecrawl's on /v2.
          firecrawl: spec.responses["413"]?.content?.["application/json"]?.schema?.$ref?.endsWith("/FirecrawlError"),
        })),
    );
    expect(withBody.length).toBeGreaterThanOrEqual(4);
    const head = '{"urls":["https://example.com/';
    const body = `${head}${"a".repeat(MAX_BODY_BYTES + 1 - head.length - 3)}"]}`;
    expect(new TextEncoder().encode(body).byteLength).toBe(MAX_BODY_BYTES + 1);
    for (const op of withBody) {
      const path = op.template.replace("{accountId}", accountId).replace("{batchId}", batchId);
      const res = await call(path, { method: op.method, headers: op.admin ? adminHeaders : keyHeaders(apiKey), body });
      count("badInputs");
      const text = await res.text();
      expect({ op: `${op.method} ${op.template}`, status: res.status }).toEqual({
        op: `${op.method} ${op.template}`,
        status: 413,
      });
      expect(JSON.parse(text)).toMatchObject(
        op.firecrawl ? { success: false, code: "PAYLOAD_TOO_LARGE" } : { status: "error", code: "PAYLOAD_TOO_LARGE" },
      );
      expectNoStack(text);
    }
    expect(await getCredits(apiKey)).toMatchObject({ balance: 98, reserved: 2, granted: 100 });
  });
});

// Per-key rate limits (429 RATE_LIMITED with Retry-After on create and cancel) and the cap on
// active batches per account (429 TOO_MANY_ACTIVE_BATCHES): test/http/rate-limit.test.ts
// covers each refusal; races.test.ts races creates for the cap's last place.
describe("rate limits and idempotent replays", () => {
  // A client retrying a create that already succeeded should get its batch, not "slow down".
  it("an idempotent replay of an accepted create is not refused by the rate limit; a new create is", async () => {
    const { apiKey } = await newAccount(100);
    const body = JSON.stringify({ urls: ["https://example.com/a", "https://example.com/b"] });
    const first = await callJson("/api/batch/scrape", {
      method: "POST",
      headers: keyHeaders(apiKey, { "idempotency-key": "replay-me" }),
      body,
    });
    expect(first.status).toBe(202);
    const refusing = { limit: async () => ({ success: false }) };
    const e = { ...env, CREATE_LIMITER: refusing };
    const app = createApp();
    const post = (key: string | null, b = body) =>
      app.request(
        "/api/batch/scrape",
        { method: "POST", headers: keyHeaders(apiKey, key === null ? {} : { "idempotency-key": key }), body: b },
        e,
      );
    const replay = await post("replay-me");
    expect(replay.status).toBe(202);
    expect(await replay.json()).toEqual(first.body);
    // Same key, other body: still a replay attempt, refused for what it is.
    const reused = await post("replay-me", JSON.stringify({ urls: ["https://example.com/c"] }));
    expect(reused.status).toBe(422);
    // New keys and no key are new creates: over the limit.
    expect((await post("a-new-key")).status).toBe(429);
    expect((await post(null)).status).toBe(429);
    expect(await getCredits(apiKey)).toMatchObject({ reserved: 4, balance: 96 });
  });
});
