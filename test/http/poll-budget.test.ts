/**
 * Polls of one batch are limited by the batch object, per key id and batch, in memory
 * (src/batch/poll-budget.ts), and not counted by READ_LIMITER; a poll that falls back to the
 * account path (foreign, unknown or malformed batch id) is. docs/abuse-limits.md.
 *
 * The configured test rate is out of reach (vitest.config.ts); each test puts a budget with a
 * fake clock into the batch object, and request limiters are injected and recorded.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { PollBudget, pollRate } from "../../src/batch/poll-budget";
import type { BucketRate } from "../../src/domain/token-bucket";
import type { Env } from "../../src/env";
import { createApp } from "../../src/http/app";
import { newAccount, newBatch, runInBatch } from "../helpers";
import { finishedBatch } from "../ops/support";
import { addKey, expectError, fillKeyCopies, revokeKey } from "./support";

const LIMITERS = ["CREATE_LIMITER", "CANCEL_LIMITER", "RETRY_LIMITER", "LIVE_LIMITER", "READ_LIMITER"] as const;

/** Every request limiter answering `success`, recording which one counted what. */
function recordingLimiters(success = true) {
  const asked: [string, string][] = [];
  const e = Object.fromEntries(
    LIMITERS.map((n) => [n, { limit: async ({ key }: { key: string }) => (asked.push([n, key]), { success }) }]),
  );
  return { e: e as Partial<Env>, asked };
}

async function send(e: Partial<Env>, path: string, init: RequestInit = {}) {
  const res = await createApp().request(path, init, { ...env, ...e });
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON (HEAD)
  }
  return { status: res.status, body, res, text };
}

/** A fake clock, and a budget reading it put into the batch object in place of the configured one. */
async function budgetIn(batchId: string, rate: BucketRate) {
  const clock = { now: Date.now() };
  await runInBatch(batchId, (o) => {
    o.polls = new PollBudget(rate, () => clock.now);
  });
  return clock;
}

const poll = (e: Partial<Env>, apiKey: string, batchId: string, method = "GET") =>
  send(e, `/api/batch/scrape/${batchId}`, { method, headers: { "x-api-key": apiKey } });

describe("a poll over its budget: 429 RATE_LIMITED with Retry-After, from the batch object", () => {
  it("the default rate (600/min, burst 20): the 21st poll in a row is refused with Retry-After 1, and one 100 ms later passes", async () => {
    const { apiKey } = await newAccount(10);
    const { batchId } = await newBatch(apiKey, 1);
    expect(pollRate({})).toEqual({ perMinute: 600, burst: 20 });
    const clock = await budgetIn(batchId, pollRate({}));
    const { e, asked } = recordingLimiters();
    for (let i = 0; i < 20; i++) expect((await poll(e, apiKey, batchId)).status).toBe(200);
    const over = await poll(e, apiKey, batchId);
    expectError(over, 429, "RATE_LIMITED");
    expect(over.res.headers.get("retry-after")).toBe("1");
    clock.now += 100; // one token at 10/s
    expect((await poll(e, apiKey, batchId)).status).toBe(200);
    expect((await poll(e, apiKey, batchId)).status).toBe(429);
    // Not one of these 23 polls was counted by a rate-limit binding.
    expect(asked).toEqual([]);
  });

  it("Retry-After is the whole seconds until the next token; the budget refills with time, up to the burst", async () => {
    const { apiKey } = await newAccount(10);
    const { batchId } = await newBatch(apiKey, 1);
    const clock = await budgetIn(batchId, { perMinute: 6, burst: 2 }); // a token every 10 s
    const { e } = recordingLimiters();
    expect((await poll(e, apiKey, batchId)).status).toBe(200);
    expect((await poll(e, apiKey, batchId)).status).toBe(200);
    expect((await poll(e, apiKey, batchId)).res.headers.get("retry-after")).toBe("10");
    clock.now += 2_500;
    const later = await poll(e, apiKey, batchId);
    expect(later.status).toBe(429);
    expect(later.res.headers.get("retry-after")).toBe("8"); // 7.5 s, rounded up
    expect(later.body.message).toMatch(/retry in 8 s/);
    clock.now += 60_000; // far more than the burst's worth: refills to 2, not 6
    expect((await poll(e, apiKey, batchId)).status).toBe(200);
    expect((await poll(e, apiKey, batchId)).status).toBe(200);
    expect((await poll(e, apiKey, batchId)).status).toBe(429);
  });

  it("an item's result and HEAD spend the same budget; HEAD over it is 429 with Retry-After and no body", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId, itemIds } = await finishedBatch(apiKey, 1);
    await budgetIn(batchId, { perMinute: 6, burst: 2 });
    const { e, asked } = recordingLimiters();
    const result = `/api/batch/scrape/${batchId}/items/${itemIds[0]}/result`;
    expect((await send(e, result, { headers: { "x-api-key": apiKey } })).status).toBe(200);
    expect((await poll(e, apiKey, batchId, "HEAD")).status).toBe(200);
    const overResult = await send(e, result, { headers: { "x-api-key": apiKey } });
    expectError(overResult, 429, "RATE_LIMITED");
    expect(overResult.res.headers.get("retry-after")).toBe("10");
    const head = await poll(e, apiKey, batchId, "HEAD");
    expect({ status: head.status, retryAfter: head.res.headers.get("retry-after"), body: head.text }).toEqual({
      status: 429,
      retryAfter: "10",
      body: "",
    });
    expect(asked).toEqual([]);
  });

  it("SerpWow's GET /live/batches/{id}: 429 in SerpWow's envelope, with Retry-After", async () => {
    const { apiKey } = await newAccount(10);
    const { batchId } = await newBatch(apiKey, 1);
    await budgetIn(batchId, { perMinute: 6, burst: 1 });
    const { e, asked } = recordingLimiters();
    const path = `/live/batches/${batchId}?api_key=${encodeURIComponent(apiKey)}`;
    expect((await send(e, path)).status).toBe(200);
    const over = await send(e, path);
    expect(over.status).toBe(429);
    expect(over.res.headers.get("retry-after")).toBe("10");
    expect(over.body).toEqual({ request_info: { success: false, message: expect.stringMatching(/retry in 10 s/) } });
    expect(asked).toEqual([]);
  });
});

describe("the budget is per key and per batch", () => {
  it("a key over its budget on one batch still polls another batch, and another key the same batch", async () => {
    const { apiKey, accountId } = await newAccount(10);
    const other = await addKey(accountId);
    const busy = await newBatch(apiKey, 1);
    const quiet = await newBatch(apiKey, 1);
    await budgetIn(busy.batchId, { perMinute: 6, burst: 1 });
    await budgetIn(quiet.batchId, { perMinute: 6, burst: 1 });
    const { e } = recordingLimiters();
    expect((await poll(e, apiKey, busy.batchId)).status).toBe(200);
    expect((await poll(e, apiKey, busy.batchId)).status).toBe(429);
    expect((await poll(e, apiKey, quiet.batchId)).status).toBe(200);
    expect((await poll(e, other.apiKey, busy.batchId)).status).toBe(200);
    expect((await poll(e, other.apiKey, busy.batchId)).status).toBe(429);
  });

  it("memory is bounded: past the cap the key used longest ago is forgotten (it starts full again)", () => {
    const clock = { now: 0 };
    const budget = new PollBudget({ perMinute: 6, burst: 1 }, () => clock.now, 2);
    expect(budget.take("a")).toBe(true);
    expect(budget.take("b")).toBe(true);
    expect(budget.take("a")).toMatchObject({ code: "RATE_LIMITED", retryAfterSeconds: 10 }); // a: used last now
    expect(budget.take("c")).toBe(true); // forgets b, the oldest
    expect(budget.size).toBe(2);
    expect(budget.take("a")).toMatchObject({ code: "RATE_LIMITED" }); // still remembered
    expect(budget.take("b")).toBe(true); // forgotten: full again (and c goes)
    expect(budget.take("c")).toBe(true);
  });
});

describe("what the budget does not change", () => {
  it("a revoked key over its budget is still 403 INVALID_API_KEY (counted as a failed authentication), not 429", async () => {
    const { apiKey: owner, accountId } = await newAccount(10);
    const key = await addKey(accountId);
    const { batchId } = await newBatch(owner, 1);
    await budgetIn(batchId, { perMinute: 6, burst: 1 });
    const { e } = recordingLimiters();
    expect((await poll(e, key.apiKey, batchId)).status).toBe(200);
    expect((await poll(e, key.apiKey, batchId)).status).toBe(429);
    await revokeKey(accountId, key.keyId);
    const failed: string[] = [];
    const failures = {
      FAILED_AUTH_KEY_LIMITER: { limit: async ({ key }: { key: string }) => (failed.push(key), { success: true }) },
    };
    expectError(await poll({ ...e, ...failures }, key.apiKey, batchId), 403, "INVALID_API_KEY");
    expect(failed).toEqual([key.keyId]);
  });

  it.each([
    ["another account's batch", "foreign"],
    ["a batch id nobody created", "unknown"],
    ["an id that is not a UUID", "not-a-uuid"],
  ])("a poll of %s falls back to the account path and IS counted by READ_LIMITER, per key id", async (_l, kind) => {
    const { apiKey, keyId } = await newAccount(10);
    const stranger = await newAccount(10);
    const foreign = await newBatch(stranger.apiKey, 1);
    const id = kind === "foreign" ? foreign.batchId : kind === "unknown" ? crypto.randomUUID() : "not-a-uuid";
    const counted = recordingLimiters(true);
    expectError(await poll(counted.e, apiKey, id), 404, "NOT_FOUND");
    expect(counted.asked).toEqual([["READ_LIMITER", keyId]]);
    // And over READ_LIMITER: its 429 (Retry-After: 60), so scanning batch ids stays limited.
    const refused = recordingLimiters(false);
    const r = await poll(refused.e, apiKey, id);
    expectError(r, 429, "RATE_LIMITED");
    expect(r.res.headers.get("retry-after")).toBe("60");
    expect(refused.asked).toEqual([["READ_LIMITER", keyId]]);
  });

  it("past MAX_KEY_COPIES (no copy kept, the account asked each time): counted by READ_LIMITER, not the budget", async () => {
    const { apiKey: owner, accountId } = await newAccount(10);
    const { batchId } = await newBatch(owner, 1);
    const { apiKey, keyId } = await addKey(accountId);
    await fillKeyCopies(accountId, keyId);
    await budgetIn(batchId, { perMinute: 6, burst: 1 });
    const counted = recordingLimiters(true);
    for (let i = 0; i < 3; i++) expect((await poll(counted.e, apiKey, batchId)).status).toBe(200);
    expect(counted.asked).toEqual(Array(3).fill(["READ_LIMITER", keyId]));
    const refused = recordingLimiters(false);
    const r = await poll(refused.e, apiKey, batchId);
    expectError(r, 429, "RATE_LIMITED");
    expect(r.res.headers.get("retry-after")).toBe("60");
  });

  it("a poll answered by the batch object is not counted by READ_LIMITER even when it would refuse", async () => {
    const { apiKey } = await newAccount(10);
    const { batchId } = await newBatch(apiKey, 1);
    const { e, asked } = recordingLimiters(false);
    expect((await poll(e, apiKey, batchId)).status).toBe(200);
    expect((await send(e, `/live/batches/${batchId}`, { headers: { "x-api-key": apiKey } })).status).toBe(200);
    expect(asked).toEqual([]);
  });
});
