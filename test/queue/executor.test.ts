import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import worker from "../../src/index";
import { callJson, expectBalanced, getBatch, keyHeaders, newAccount, runInBatch, urls } from "../helpers";
import { messagesSent, watchConsumer } from "./consumer-watch";
import { fakeSite, gate } from "./site";

const SITE = "https://site.example/page";

afterEach(() => vi.restoreAllMocks());

async function create(apiKey: string, body: Record<string, unknown>) {
  const res = await callJson("/api/batch/scrape", {
    method: "POST",
    headers: keyHeaders(apiKey),
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(202);
  return res.body.batchId as string;
}

async function waitForBatch(apiKey: string, batchId: string, done: (b: any) => boolean, timeout = 10_000) {
  return vi.waitFor(
    async () => {
      const { body } = await getBatch(apiKey, batchId);
      if (!done(body))
        throw new Error(
          `not yet: ${JSON.stringify({ status: body.status, p: body.pendingCount, r: body.runningCount, c: body.completedCount, f: body.failedCount })}`,
        );
      return body;
    },
    { timeout, interval: 20 },
  );
}

describe("executor through the queue", () => {
  it("runs every item, never more than maxConcurrency at once, and charges each completed item", async () => {
    const site = fakeSite(() => ({}));
    const { apiKey } = await newAccount(100);
    const batchId = await create(apiKey, {
      urls: urls(6, SITE),
      maxConcurrency: 2,
      output: "json",
      selectors: { heading: "h1" },
    });
    const b = await waitForBatch(apiKey, batchId, (x) => x.status === "completed");
    expect(b).toMatchObject({ completedCount: 6, creditsUsed: 12 });
    expect(site.total()).toBe(6);
    expect(site.maxInFlight()).toBeLessThanOrEqual(2);
    const item = b.items[0];
    expect(item.result).toMatchObject({ url: `${SITE}/0`, statusCode: 200, selectors: { heading: ["Hello"] } });
    expect(item).toMatchObject({
      statusCode: 200,
      finalUrl: `${SITE}/0`,
      resultUrl: `/api/batch/scrape/${batchId}/items/${item.uuid}/result`,
    });
    const stored = await callJson(item.resultUrl, { headers: keyHeaders(apiKey) });
    expect(stored.status).toBe(200);
    expect(stored.res.headers.get("content-type")).toContain("application/json");
    expect(stored.body).toMatchObject({ url: `${SITE}/0`, title: `${SITE}/0` });
    expect(await expectBalanced(apiKey, [batchId])).toMatchObject({ used: 12, reserved: 0, balance: 88 });
  });

  it("plays the seed's story: cancel while 2 run; 8 refunded, the 2 finish and are charged, nothing else starts", async () => {
    const hold = gate();
    const site = fakeSite(() => ({ gate: hold.promise }));
    const consumer = watchConsumer();
    const { apiKey } = await newAccount(100);
    const batchId = await create(apiKey, { urls: urls(10, SITE), maxConcurrency: 2 });
    await waitForBatch(apiKey, batchId, (x) => x.runningCount === 2);
    const cancel = await callJson(`/api/batch/scrape/${batchId}`, { method: "DELETE", headers: keyHeaders(apiKey) });
    expect(cancel.body).toEqual({ status: "cancelled", cancelledItems: 8, creditsRefunded: 16 });
    hold.open();
    const b = await waitForBatch(apiKey, batchId, (x) => x.runningCount === 0 && x.finishedAt !== null);
    expect(b).toMatchObject({
      status: "cancelled",
      completedCount: 2,
      cancelledCount: 8,
      creditsUsed: 4,
      creditsRefunded: 16,
    });
    // Every message the batch sent has been consumed: the two that ran, and no other.
    expect(await messagesSent(batchId)).toBe(2);
    await vi.waitFor(() => expect(consumer.handled(batchId).map((h) => h.outcome)).toEqual(["ack", "ack"]), {
      timeout: 5000,
      interval: 20,
    });
    expect(site.total()).toBe(2);
    const cancelledItem = b.items.find((i: { status: string }) => i.status === "cancelled");
    expect(
      (
        await callJson(`/api/batch/scrape/${batchId}/items/${cancelledItem.uuid}/result`, {
          headers: keyHeaders(apiKey),
        })
      ).status,
    ).toBe(404);
    expect(await expectBalanced(apiKey, [batchId])).toMatchObject({ balance: 96, reserved: 0, used: 4, refunded: 16 });
  });

  it("retries transient failures with backoff, then succeeds; a permanent failure fails at once and is refunded", async () => {
    const site = fakeSite((url, hit) => {
      if (url.endsWith("/0")) return hit < 3 ? { status: 503 } : {};
      if (url.endsWith("/1")) return { status: 404 };
      return {};
    });
    const { apiKey } = await newAccount(100);
    const batchId = await create(apiKey, { urls: urls(2, SITE), output: "markdown" });
    const b = await waitForBatch(apiKey, batchId, (x) => x.status === "completed");
    expect(b.items[0]).toMatchObject({ status: "completed", attempts: 3, creditsUsed: 1 });
    expect(typeof b.items[0].result).toBe("string");
    expect(b.items[1]).toMatchObject({
      status: "failed",
      attempts: 1,
      creditsUsed: 0,
      errorCode: "HTTP_404",
      error: expect.any(String),
      statusCode: 404,
    });
    expect(site.hits.get(`${SITE}/0`)).toBe(3);
    expect(site.hits.get(`${SITE}/1`)).toBe(1);
    expect(await expectBalanced(apiKey, [batchId])).toMatchObject({ used: 1, refunded: 1, reserved: 0 });
  });

  it("a 429's Retry-After, in seconds or as an HTTP date, sets when the item is tried again", async () => {
    // Whole seconds, as an HTTP date carries them; a minute ahead, far past the 20 ms backoff.
    const at = Math.floor((Date.now() + 60_000) / 1000) * 1000;
    fakeSite((url) => ({
      status: 429,
      headers: { "retry-after": url.endsWith("/0") ? "30" : new Date(at).toUTCString() },
    }));
    const { apiKey } = await newAccount(100);
    const sent = Date.now();
    const batchId = await create(apiKey, { urls: urls(2, SITE) });
    const b = await waitForBatch(apiKey, batchId, (x) =>
      x.items.every((i: { status: string; attempts: number }) => i.status === "pending" && i.attempts === 1),
    );
    const seen = Date.now();
    expect(b.items.map((i: { errorCode: string }) => i.errorCode)).toEqual(["HTTP_429", "HTTP_429"]);
    const notBefore = await runInBatch(batchId, (_o, state) =>
      state.storage.sql
        .exec<{ not_before: number | null }>("SELECT not_before FROM items ORDER BY idx")
        .toArray()
        .map((r) => r.not_before!),
    );
    // Retry-After: 30 -> 30 s after the failure was settled, which happened between sent and seen.
    expect(notBefore[0]! - 30_000).toBeGreaterThanOrEqual(sent);
    expect(notBefore[0]! - 30_000).toBeLessThanOrEqual(seen);
    // The date: whole seconds from when the page was fetched, so from `at` to under a second and the settle's lag after it.
    expect(notBefore[1]!).toBeGreaterThanOrEqual(at);
    expect(notBefore[1]!).toBeLessThan(at + 1000 + (seen - sent));
    await callJson(`/api/batch/scrape/${batchId}`, { method: "DELETE", headers: keyHeaders(apiKey) });
  });

  it("refuses a redirect to a blocked address before following it: the item fails BLOCKED_TARGET, charged 0", async () => {
    // Address literals are refused at create (test/http/create-targets.test.ts); a public page can still redirect to one.
    const blocked = [
      "http://[::ffff:0:a9fe:a9fe]/latest/meta-data",
      "http://169.254.169.254/latest/meta-data",
      "http://0x7f000001/",
    ];
    const site = fakeSite((url) => {
      const hop = Number(url.slice(-1));
      return url.startsWith(SITE) ? { status: 302, headers: { location: blocked[hop]! } } : {};
    });
    const { apiKey } = await newAccount(100);
    const batchId = await create(apiKey, { urls: urls(3, SITE) });
    const b = await waitForBatch(apiKey, batchId, (x) => x.status === "failed");
    for (const item of b.items)
      expect(item).toMatchObject({ status: "failed", creditsUsed: 0, errorCode: "BLOCKED_TARGET" });
    expect(b.items[0].error).toMatch(/IPv4-translated address ::ffff:0:a9fe:a9fe /);
    expect([...site.hits.keys()].sort()).toEqual(urls(3, SITE));
    await expectBalanced(apiKey, [batchId]);
  });

  it("a queue message delivered twice runs the item once", async () => {
    const hold = gate();
    const site = fakeSite(() => ({ gate: hold.promise }));
    const { apiKey } = await newAccount(100);
    const batchId = await create(apiKey, { urls: urls(1, SITE) });
    const running = await waitForBatch(apiKey, batchId, (x) => x.runningCount === 1);
    // The same dispatch again while the first still runs. The local queue hands a consumer
    // one batch at a time, so it goes straight to the Worker's handler, as a second
    // consumer would get it: dropped and acked, with no fetch.
    const duplicate = createMessageBatch("scrape-items", [
      {
        id: "again",
        timestamp: new Date(),
        attempts: 1,
        body: { v: 1, batchId, itemId: running.items[0].uuid, dispatch: 1 },
      },
    ]);
    await worker.queue(duplicate, env);
    expect(await getQueueResult(duplicate, createExecutionContext())).toMatchObject({
      explicitAcks: ["again"],
      retryMessages: [],
      ackAll: false,
      retryBatch: { retry: false },
    });
    expect(site.total()).toBe(1);
    hold.open();
    await waitForBatch(apiKey, batchId, (x) => x.status === "completed");
    expect(site.total()).toBe(1);
    expect(await expectBalanced(apiKey, [batchId])).toMatchObject({ used: 2, reserved: 0 });
  });

  it("a message that can never be processed ends in the dead-letter queue, visible to operators", async () => {
    await env.SCRAPE_QUEUE.send({ not: "a scrape message" } as never);
    const found = await vi.waitFor(
      async () => {
        const { body } = await callJson("/admin/dead-letters", {
          headers: { authorization: "Bearer test-admin-token" },
        });
        if (body.deadLetters.length === 0) throw new Error("not yet");
        return body.deadLetters;
      },
      { timeout: 15_000, interval: 100 },
    );
    expect(found[0]).toMatchObject({ body: { not: "a scrape message" } });
    expect(found[0].queue).toBe("scrape-items-dlq");
    expect(Date.parse(found[0].deadAt)).toBeGreaterThan(Date.now() - 60_000);
  }, 20_000);
});
