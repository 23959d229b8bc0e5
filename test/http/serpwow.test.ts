import { describe, expect, it } from "vitest";
import {
  batchStub,
  call,
  callJson,
  drainOutbox,
  expectBalanced,
  getBatch,
  keyHeaders,
  newAccount,
  newBatch,
} from "../helpers";

/** SerpWow's own style: GET with the key in the query string, no headers at all. */
function live(path: string, apiKey?: string) {
  const sep = path.includes("?") ? "&" : "?";
  return callJson(apiKey === undefined ? path : `${path}${sep}api_key=${encodeURIComponent(apiKey)}`);
}

async function startOne(batchId: string, itemId: string) {
  const r = await batchStub(batchId).startItem(itemId);
  if (r.action !== "run") throw new Error("not started");
  return r;
}

/** One batch in each state: pending, running, completed, failed, cancelled. */
async function batchesInEveryState(apiKey: string) {
  const pending = await newBatch(apiKey, 3);
  const running = await newBatch(apiKey, 3);
  await startOne(running.batchId, running.itemIds[0]!);
  const completed = await newBatch(apiKey, 1);
  const c = await startOne(completed.batchId, completed.itemIds[0]!);
  await batchStub(completed.batchId).completeItem(completed.itemIds[0]!, c.attempt, {});
  const failed = await newBatch(apiKey, 1);
  const f = await startOne(failed.batchId, failed.itemIds[0]!);
  await batchStub(failed.batchId).failItem(failed.itemIds[0]!, f.attempt, { code: "HTTP_404", message: "gone" });
  const cancelled = await newBatch(apiKey, 2);
  await callJson(`/api/batch/scrape/${cancelled.batchId}`, { method: "DELETE", headers: keyHeaders(apiKey) });
  const all = [pending, running, completed, failed, cancelled].map((b) => b.batchId);
  for (const id of all) await drainOutbox(id);
  return { pending, running, completed, failed, cancelled, all };
}

describe("GET /live/batches/:batchId/stop", () => {
  it("stops a queued batch with ?api_key=, in SerpWow's envelope: every item refunded", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 4);
    const res = await live(`/live/batches/${batchId}/stop`, apiKey);
    expect(res.status).toBe(200);
    expect(res.body.request_info).toEqual({
      success: true,
      message: "Batch stopped: 4 searches cancelled, 8 credits refunded",
    });
    expect(res.body).toMatchObject({ cancelled_items: 4, credits_refunded: 8 });
    expect(res.body.batch).toMatchObject({
      id: batchId,
      status: "idle",
      state: "cancelled",
      searches_total_count: 4,
      searches_cancelled_count: 4,
      credits_refunded: 8,
    });
    expect(await expectBalanced(apiKey, [batchId])).toMatchObject({ balance: 100, reserved: 0 });
  });

  it("stops a running batch by the same rule as DELETE: pending refunded, running ones finish and are charged", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 5);
    const lease = await startOne(batchId, itemIds[0]!);
    const res = await live(`/live/batches/${batchId}/stop`, apiKey);
    expect(res.body).toMatchObject({ cancelled_items: 4, credits_refunded: 8 });
    expect(await batchStub(batchId).startItem(itemIds[1]!)).toEqual({ action: "drop", reason: "BATCH_CANCELLED" });
    await batchStub(batchId).completeItem(itemIds[0]!, lease.attempt, {});
    expect(await expectBalanced(apiKey, [batchId])).toMatchObject({ used: 2, refunded: 8, reserved: 0, balance: 98 });
  });

  it("the x-api-key header works too", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 1);
    const res = await callJson(`/live/batches/${batchId}/stop`, { headers: { "x-api-key": apiKey } });
    expect(res.status).toBe(200);
  });

  it.each(["completed", "failed", "cancelled"] as const)(
    "400 for a batch that is not queued or running (%s), saying why",
    async (state) => {
      const { apiKey } = await newAccount(100);
      const batches = await batchesInEveryState(apiKey);
      const res = await live(`/live/batches/${batches[state].batchId}/stop`, apiKey);
      expect(res.status).toBe(400);
      expect(res.body).toEqual({
        request_info: {
          success: false,
          message: `Batch can only be stopped when queued or running; it is idle (${state}).`,
        },
      });
    },
  );

  it.each([
    ["an unknown id", () => crypto.randomUUID()],
    ["a SerpWow-style numeric id", () => "123456"],
    ["a path-traversal id", () => "..%2F..%2Fadmin"],
  ])("404 for %s, in the envelope", async (_name, id) => {
    const { apiKey } = await newAccount(100);
    const res = await live(`/live/batches/${id()}/stop`, apiKey);
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ request_info: { success: false, message: "No batch found with this ID." } });
  });

  it("404 for another account's batch, and it keeps running", async () => {
    const owner = await newAccount(100);
    const other = await newAccount(100);
    const { batchId } = await newBatch(owner.apiKey, 2);
    const res = await live(`/live/batches/${batchId}/stop`, other.apiKey);
    expect(res.status).toBe(404);
    expect(res.body.request_info.success).toBe(false);
    expect((await getBatch(owner.apiKey, batchId)).body.status).toBe("pending");
  });

  it("401 without a key and 403 with a bad one, in the envelope", async () => {
    const missing = await live(`/live/batches/${crypto.randomUUID()}/stop`);
    expect(missing.status).toBe(401);
    expect(missing.body).toEqual({
      request_info: {
        success: false,
        message: "Missing API key: send it in the x-api-key header or as Authorization: Bearer <key>.",
      },
    });
    const bad = await live(`/live/batches/${crypto.randomUUID()}/stop`, "demo");
    expect(bad.status).toBe(403);
    expect(bad.body).toEqual({ request_info: { success: false, message: "Invalid or expired API key." } });
  });
});

describe("GET /live/batches/stopall", () => {
  it("stops only queued and running batches, with exact counts, and the ledger balances", async () => {
    const { apiKey } = await newAccount(200);
    const batches = await batchesInEveryState(apiKey);
    const res = await live("/live/batches/stopall", apiKey);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      request_info: { success: true, message: "2 Batches stopped" },
      batches_stopped: 2,
      batches_failed_to_stop: 0,
    });
    expect((await getBatch(apiKey, batches.pending.batchId)).body).toMatchObject({
      status: "cancelled",
      cancelledCount: 3,
    });
    expect((await getBatch(apiKey, batches.running.batchId)).body).toMatchObject({
      status: "cancelled",
      cancelledCount: 2,
      runningCount: 1,
    });
    expect((await getBatch(apiKey, batches.completed.batchId)).body.status).toBe("completed");
    expect((await getBatch(apiKey, batches.failed.batchId)).body.status).toBe("failed");
    await expectBalanced(apiKey, batches.all);
  });

  it("is safe to call twice, one after the other and at the same time", async () => {
    const { apiKey } = await newAccount(200);
    const ids = [];
    for (let i = 0; i < 6; i++) ids.push((await newBatch(apiKey, 2)).batchId);
    const [a, b] = await Promise.all([live("/live/batches/stopall", apiKey), live("/live/batches/stopall", apiKey)]);
    expect(a.body.batches_stopped + b.body.batches_stopped).toBe(6);
    expect(a.body.batches_failed_to_stop + b.body.batches_failed_to_stop).toBe(0);
    const again = await live("/live/batches/stopall", apiKey);
    expect(again.body).toMatchObject({
      request_info: { success: true, message: "0 Batches stopped" },
      batches_stopped: 0,
    });
    expect(await expectBalanced(apiKey, ids)).toMatchObject({ balance: 200, reserved: 0, refunded: 24 });
  });

  it("finishes for an account with hundreds of active batches", async () => {
    const { apiKey } = await newAccount(10_000);
    const creates = [];
    for (let i = 0; i < 200; i++) {
      creates.push(
        callJson("/api/batch/scrape", {
          method: "POST",
          headers: keyHeaders(apiKey),
          body: JSON.stringify({ urls: ["https://example.com/a", "https://example.com/b"] }),
        }),
      );
    }
    const ids = (await Promise.all(creates)).map((r) => r.body.batchId as string);
    const res = await live("/live/batches/stopall", apiKey);
    expect(res.body).toMatchObject({ batches_stopped: 200, batches_failed_to_stop: 0 });
    const credits = await callJson("/api/credits", { headers: keyHeaders(apiKey) });
    expect(credits.body).toMatchObject({ balance: 10_000, reserved: 0, refunded: 800 });
    expect((await getBatch(apiKey, ids[199]!)).body.status).toBe("cancelled");
  }, 30_000);
});

describe("POST /api/batch/scrape/cancel-all", () => {
  it("cancels every active batch, with the totals of what it refunded", async () => {
    const { apiKey } = await newAccount(200);
    const batches = await batchesInEveryState(apiKey);
    const res = await callJson("/api/batch/scrape/cancel-all", { method: "POST", headers: keyHeaders(apiKey) });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      status: "cancelled",
      batchesCancelled: 2,
      batchesFailedToCancel: 0,
      cancelledItems: 5,
      creditsRefunded: 10,
    });
    await expectBalanced(apiKey, batches.all);
    const again = await callJson("/api/batch/scrape/cancel-all", { method: "POST", headers: keyHeaders(apiKey) });
    expect(again.body).toMatchObject({ batchesCancelled: 0, creditsRefunded: 0 });
  });
});

describe("GET /live/batches/:batchId and GET /live/batches", () => {
  it("maps every state to SerpWow's words, keeping the precise one in `state`", async () => {
    const { apiKey } = await newAccount(200);
    const batches = await batchesInEveryState(apiKey);
    const expected = {
      pending: "queued",
      running: "running",
      completed: "idle",
      failed: "idle",
      cancelled: "idle",
    } as const;
    for (const state of Object.keys(expected) as (keyof typeof expected)[]) {
      const res = await live(`/live/batches/${batches[state].batchId}`, apiKey);
      expect(res.status).toBe(200);
      expect(res.body.request_info).toEqual({ success: true });
      expect(res.body.batch).toMatchObject({ id: batches[state].batchId, status: expected[state], state });
    }
    const running = (await live(`/live/batches/${batches.running.batchId}`, apiKey)).body.batch;
    expect(running).toMatchObject({ searches_total_count: 3, credits_required: 6, credits_used: 0 });
    expect(running.last_run).not.toBeNull();
    expect(running.created_at).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it("lists batches newest first, ten a page, with SerpWow's paging fields", async () => {
    const { apiKey } = await newAccount(500);
    const ids = [];
    for (let i = 0; i < 12; i++) ids.push((await newBatch(apiKey, 1)).batchId);
    const first = await live("/live/batches?page=1", apiKey);
    expect(first.body).toMatchObject({
      request_info: { success: true },
      total_count: 12,
      total_pages: 2,
      current_page: 1,
      count_this_page: 10,
    });
    expect(first.body.batches.map((b: { id: string }) => b.id)).toEqual(ids.slice().reverse().slice(0, 10));
    expect(first.body.batches[0]).toMatchObject({ status: "queued", state: "pending", searches_total_count: 1 });
    const second = await live("/live/batches?page=2", apiKey);
    expect(second.body).toMatchObject({ current_page: 2, count_this_page: 2 });
    expect(second.body.batches.map((b: { id: string }) => b.id)).toEqual([ids[1], ids[0]]);
    const bad = await live("/live/batches?page=0", apiKey);
    expect(bad.status).toBe(400);
    expect(bad.body.request_info).toEqual({ success: false, message: "page: must be at least 1" });
  });

  it("anything else under /live is a 404 in the envelope", async () => {
    const { apiKey } = await newAccount(100);
    const res = await live("/live/nothing-here", apiKey);
    expect(res.status).toBe(404);
    expect(res.body).toEqual({ request_info: { success: false, message: "Route not found." } });
  });
});

describe("the two surfaces agree", () => {
  it("a batch stopped on /live reads cancelled on /api, with the same counts, and the other way round", async () => {
    const { apiKey } = await newAccount(100);
    const a = await newBatch(apiKey, 3);
    await live(`/live/batches/${a.batchId}/stop`, apiKey);
    const viaApi = (await getBatch(apiKey, a.batchId)).body;
    const viaLive = (await live(`/live/batches/${a.batchId}`, apiKey)).body.batch;
    expect(viaApi).toMatchObject({
      status: "cancelled",
      cancelledCount: viaLive.searches_cancelled_count,
      creditsRefunded: viaLive.credits_refunded,
    });

    const b = await newBatch(apiKey, 2);
    await callJson(`/api/batch/scrape/${b.batchId}`, { method: "DELETE", headers: keyHeaders(apiKey) });
    const stoppedAgain = await live(`/live/batches/${b.batchId}/stop`, apiKey);
    expect(stoppedAgain.status).toBe(400);
    expect((await live(`/live/batches/${b.batchId}`, apiKey)).body.batch).toMatchObject({
      status: "idle",
      state: "cancelled",
      searches_cancelled_count: 2,
    });
    await expectBalanced(apiKey, [a.batchId, b.batchId]);
  });

  it("the OpenAPI document describes the SerpWow surface beside the primary one", async () => {
    const doc = await (await call("/openapi.json")).json<{ paths: Record<string, Record<string, unknown>> }>();
    for (const path of [
      "/live/batches/{batchId}/stop",
      "/live/batches/stopall",
      "/live/batches/{batchId}",
      "/live/batches",
      "/api/batch/scrape/cancel-all",
    ]) {
      expect(Object.keys(doc.paths)).toContain(path);
    }
  });
});
