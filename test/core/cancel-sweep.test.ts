/**
 * Cancel in constant time (issue 15): the cancel writes the batch row and its outbox rows,
 * never the items; the items pending at the cancel read `cancelled` at once, and the batch's
 * alarm rewrites their rows in bounded chunks until storage is what a linear cancel leaves.
 */
import { evictDurableObject, runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { SWEEP_CHUNK_ROWS } from "../../src/batch/item-rows";
import { SETTLEMENT_WINDOW_MS } from "../../src/domain/next-alarm";
import {
  accountStub,
  batchStub,
  callJson,
  drainOutbox,
  expectBalanced,
  getBatch,
  keyHeaders,
  newAccount,
  newBatch,
  resetObject,
  runInBatch,
  watchSql,
} from "../helpers";
import { readLedger } from "../reliability/ledger";
import { sleep } from "../reliability/support";

type StoredItem = Record<string, SqlStorageValue> & { id: string; status: string; finished_at: number | null };

const storedItems = (batchId: string) =>
  runInBatch(batchId, (_o, s) => s.storage.sql.exec<StoredItem>("SELECT * FROM items ORDER BY idx").toArray());
const storedPending = (batchId: string) =>
  runInBatch(
    batchId,
    (_o, s) => s.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM items WHERE status = 'pending'").one().n,
  );
const cancel = (apiKey: string, batchId: string) =>
  callJson(`/api/batch/scrape/${batchId}`, { method: "DELETE", headers: keyHeaders(apiKey) });
/** When the batch's alarm is set for (null: none). runDurableObjectAlarm runs any alarm at once, whatever its time. */
const alarmAt = (batchId: string) => runInBatch(batchId, (_o, s) => s.storage.getAlarm());
const setChunk = (batchId: string, rows: number) =>
  runInBatch(batchId, (o) => {
    o.sweepChunkRows = rows;
  });

const cancelledAt = (batchId: string) =>
  runInBatch(
    batchId,
    (_o, s) => s.storage.sql.exec<{ c: number | null }>("SELECT cancelled_at AS c FROM batch").one().c,
  );
/** What a linear cancel at `at` leaves: pending rows -> cancelled at the cancel, nothing else changes. */
const linearCancel = (before: StoredItem[], at: number) =>
  before.map((r) => (r.status === "pending" ? { ...r, status: "cancelled", finished_at: at } : r));
/**
 * Runs the batch's alarm, as the runtime would, until no row is stored pending and nothing
 * waits in the outbox to the account: each run must find the alarm armed. Returns the runs.
 */
async function alarmsToQuiet(batchId: string, max = 20): Promise<number> {
  const busy = () =>
    runInBatch(batchId, (o, s) => {
      const pending = s.storage.sql.exec("SELECT 1 FROM items WHERE status = 'pending' LIMIT 1").toArray().length;
      return pending > 0 || o.toAccount.size() > 0;
    });
  let runs = 0;
  while ((await busy()) && runs < max) {
    expect(await runDurableObjectAlarm(batchStub(batchId))).toBe(true);
    runs++;
  }
  expect(await busy()).toBe(false);
  return runs;
}
/** Every delivery to the account waits until the returned function is called (the instance's memory: a reset ends it). */
const stallDeliveries = async (batchId: string) => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  await runInBatch(batchId, (o) => {
    const real = o.toAccount.send;
    o.toAccount.send = async (events) => {
      await gate;
      return real(events);
    };
  });
  return release;
};
/** Polls storage (the object answers while a call of it awaits the account) until `done`. */
async function waitFor(what: string, done: () => Promise<boolean>): Promise<void> {
  for (let k = 0; k < 200; k++) {
    if (await done()) return;
    await sleep(5);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Rows the in-object cancel writes (SQLite's own count, indexes included), and whether it touched `items`. */
async function cancelWork(accountId: string, batchId: string) {
  const { value, runs } = await runInBatch(batchId, (o, s) => watchSql(s.storage.sql, () => o.cancel(accountId)));
  if (!value.ok) throw new Error(value.message);
  return {
    cancelled: value.cancelledItems,
    rowsWritten: runs.reduce((n, r) => n + r.cursor.rowsWritten, 0),
    itemWrites: runs.filter((r) => /^\s*(UPDATE|INSERT|DELETE)\b[^;]*\bitems\b/i.test(r.query)).length,
  };
}

describe("cancel in constant time", () => {
  it("writes the same rows for 10 and 1,000 pending items, and no item row", async () => {
    const { apiKey, accountId } = await newAccount(10_000);
    const small = await newBatch(apiKey, 10);
    const large = await newBatch(apiKey, 1000);
    const a = await cancelWork(accountId, small.batchId);
    const b = await cancelWork(accountId, large.batchId);
    expect([a.cancelled, b.cancelled]).toEqual([10, 1000]);
    expect(b.rowsWritten).toBe(a.rowsWritten);
    expect(b.rowsWritten).toBeLessThan(20);
    expect(b.itemWrites).toBe(0);
    // Refunds come from the counts: the books close on both.
    expect(await expectBalanced(apiKey, [small.batchId, large.batchId])).toMatchObject({ reserved: 0, used: 0 });
  });

  it("mid-sweep, every read shows the pending items cancelled at the cancel's time, and no start is granted", async () => {
    const { apiKey, accountId } = await newAccount(10_000);
    const { batchId, itemIds } = await newBatch(apiKey, 300);
    const stub = batchStub(batchId);
    const running = await stub.startItem(itemIds[0]!);
    expect(running.action).toBe("run");
    expect((await cancel(apiKey, batchId)).body).toEqual({
      status: "cancelled",
      cancelledItems: 299,
      creditsRefunded: 598,
    });
    await setChunk(batchId, 100);
    expect(await runDurableObjectAlarm(stub)).toBe(true); // one chunk
    expect(await storedPending(batchId)).toBe(199);

    const { body } = await getBatch(apiKey, batchId);
    expect(body).toMatchObject({ status: "cancelled", pendingCount: 0, runningCount: 1, cancelledCount: 299 });
    const items: { uuid: string; status: string; finishedAt: string | null }[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: { items: typeof items; nextCursor: string | null } } = await callJson(
        `/api/batch/scrape/${batchId}?limit=100${cursor ? `&cursor=${cursor}` : ""}`,
        { headers: keyHeaders(apiKey) },
      );
      items.push(...page.body.items);
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(items.map((i) => i.status)).toEqual(["running", ...Array(299).fill("cancelled")]);
    for (const i of items.slice(1)) expect(i.finishedAt).toBe(body.cancelledAt);
    // Rows swept and rows not yet swept read the same.
    expect(new Set(items.slice(1).map((i) => JSON.stringify({ ...i, uuid: "", url: "", index: 0 }))).size).toBe(1);

    // Starts of swept and unswept items, alone or in a group, and their result: refused.
    for (const id of [itemIds[1]!, itemIds[299]!])
      expect(await stub.startItem(id)).toEqual({ action: "drop", reason: "BATCH_CANCELLED" });
    expect(await stub.startItems([{ itemId: itemIds[298]! }, { itemId: itemIds[2]! }])).toEqual([
      { action: "drop", reason: "BATCH_CANCELLED" },
      { action: "drop", reason: "BATCH_CANCELLED" },
    ]);
    expect(await stub.resultLocation(accountId, itemIds[299]!)).toMatchObject({ ok: false, code: "NOT_FOUND" });
    // The SerpWow surface and the account's index say the same: cancelled, counts from the batch.
    const serp = await callJson(`/live/batches/${batchId}`, { headers: keyHeaders(apiKey) });
    expect(serp.status).toBe(200);
    expect(serp.body.batch).toBeDefined();
    expect(JSON.stringify(serp.body.batch)).not.toMatch(/"(pending|queued)"/);
    const listed = await accountStub(accountId).listBatches(1, 100);
    expect(listed.jobs.find((j) => j.batchId === batchId)).toMatchObject({ status: "cancelled", cancelled: 299 });
    // A retry of a cancelled batch is refused, as before.
    const retried = await callJson(`/api/batch/scrape/${batchId}/retry`, {
      method: "POST",
      headers: keyHeaders(apiKey),
    });
    expect({ status: retried.status, code: retried.body.code }).toEqual({ status: 409, code: "BATCH_CANCELLED" });
  });

  it("the sweep survives evictions between chunks and leaves storage exactly as a linear cancel", async () => {
    const { apiKey, accountId } = await newAccount(10_000);
    const { batchId, itemIds } = await newBatch(apiKey, 250);
    const stub = batchStub(batchId);
    // Some items ran (one completed, one still running); some were dispatched (queued) before the cancel.
    const a = await stub.startItem(itemIds[0]!);
    const b = await stub.startItem(itemIds[1]!);
    if (a.action !== "run" || b.action !== "run") throw new Error("expected starts");
    await stub.completeItem(itemIds[0]!, a.attempt, { ok: true });
    await runInBatch(batchId, (_o, s) => {
      s.storage.sql.exec("UPDATE items SET dispatched_at = 5, dispatch_token = 1 WHERE idx IN (7, 8, 200)");
    });
    const before = await storedItems(batchId);
    const done = await runInBatch(batchId, (o) => o.cancel(accountId));
    if (!done.ok) throw new Error(done.message);
    const cancelledAt = Date.parse(done.batch.cancelledAt!);

    const linear = linearCancel(before, cancelledAt);

    let steps = 0;
    let left = await storedPending(batchId);
    expect(left).toBe(248);
    while (left > 0) {
      await evictDurableObject(stub); // mid-sweep: memory gone, the alarm and the rows stay
      await setChunk(batchId, 60);
      expect(await runDurableObjectAlarm(stub)).toBe(true);
      const now = await storedPending(batchId);
      expect(left - now).toBe(Math.min(60, left)); // one bounded chunk per alarm run
      // While rows remain the next chunk is due at once; then only retention's far alarm stays.
      const at = await alarmAt(batchId);
      if (now > 0) expect(at).toBeLessThanOrEqual(Date.now());
      else expect(at === null || at > Date.now() + 60_000).toBe(true);
      left = now;
      steps++;
    }
    expect(steps).toBe(Math.ceil(248 / 60));
    expect(await storedItems(batchId)).toEqual(linear);
    // A repeated step (alarms are at least once) changes nothing.
    await runInBatch(batchId, (o) => o.alarm());
    expect(await storedItems(batchId)).toEqual(linear);
    // The running item still settles and is charged; the books close.
    await stub.completeItem(itemIds[1]!, b.attempt, { ok: true });
    expect(await expectBalanced(apiKey, [batchId])).toMatchObject({ reserved: 0, used: 4 });
  });

  it("starts racing the sweep's alarm runs are all refused, swept rows or not", async () => {
    const { apiKey } = await newAccount(10_000);
    const { batchId, itemIds } = await newBatch(apiKey, 400);
    const stub = batchStub(batchId);
    expect((await cancel(apiKey, batchId)).status).toBe(200);
    await setChunk(batchId, 50);
    // Starts of every item, in small groups, while the alarm sweeps chunk after chunk.
    const starts = itemIds.map((id, k) =>
      k % 3 === 0 ? stub.startItems([{ itemId: id }]).then((r) => r[0]!) : stub.startItem(id),
    );
    const sweeps = (async () => {
      let runs = 0;
      while (runs < 20 && (await runDurableObjectAlarm(stub))) runs++;
      return runs;
    })();
    const [results, runs] = await Promise.all([Promise.all(starts), sweeps]);
    expect(runs).toBeGreaterThanOrEqual(Math.ceil(400 / 50));
    expect(new Set(results.map((r) => JSON.stringify(r)))).toEqual(
      new Set([JSON.stringify({ action: "drop", reason: "BATCH_CANCELLED" })]),
    );
    expect(await storedPending(batchId)).toBe(0);
    expect((await getBatch(apiKey, batchId)).body).toMatchObject({ runningCount: 0, cancelledCount: 400 });
  });

  it("retention during a sweep deletes everything", async () => {
    const { apiKey } = await newAccount(10_000);
    const { batchId } = await newBatch(apiKey, 200);
    const stub = batchStub(batchId);
    expect((await cancel(apiKey, batchId)).status).toBe(200);
    await setChunk(batchId, 50);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await storedPending(batchId)).toBe(150);
    // The batch is past its retention while rows remain unswept.
    await runInBatch(batchId, (_o, s) => {
      s.storage.sql.exec("UPDATE batch SET finished_at = finished_at - ? WHERE id = 1", 400 * 86_400_000);
    });
    for (let k = 0; k < 5 && (await runDurableObjectAlarm(stub)); k++);
    const tables = await runInBatch(batchId, (_o, s) =>
      s.storage.sql
        .exec<{ name: string }>(
          "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\'",
        )
        .toArray(),
    );
    expect(tables).toEqual([]);
    const gone = await getBatch(apiKey, batchId);
    expect({ status: gone.status, code: gone.body.code }).toEqual({ status: 410, code: "BATCH_EXPIRED" });
    expect(await runDurableObjectAlarm(stub)).toBe(false); // no sweep alarm left behind
  });

  it("production chunk: a 1,000-item cancel is swept by the alarm the cancel armed, in one run", async () => {
    expect(SWEEP_CHUNK_ROWS).toBeGreaterThanOrEqual(1000);
    const { apiKey } = await newAccount(10_000);
    const { batchId } = await newBatch(apiKey, 1000);
    expect((await cancel(apiKey, batchId)).status).toBe(200);
    expect(await storedPending(batchId)).toBe(1000);
    expect(await alarmAt(batchId)).toBeLessThanOrEqual(Date.now()); // the cancel armed the sweep, due now
    expect(await runDurableObjectAlarm(batchStub(batchId))).toBe(true);
    expect(await storedPending(batchId)).toBe(0);
  });

  describe("resets (the runtime aborts the object: calls in flight fail, storage and the alarm stay)", () => {
    it("a reset mid-sweep resumes: after each reset the alarm is there and the sweep ends as a linear cancel", async () => {
      const { apiKey, accountId } = await newAccount(10_000);
      const { batchId, itemIds } = await newBatch(apiKey, 250);
      const running = await batchStub(batchId).startItem(itemIds[0]!);
      if (running.action !== "run") throw new Error("expected a start");
      const before = await storedItems(batchId);
      const done = await runInBatch(batchId, (o) => o.cancel(accountId));
      if (!done.ok) throw new Error(done.message);
      const linear = linearCancel(before, Date.parse(done.batch.cancelledAt!));

      let left = await storedPending(batchId);
      let steps = 0;
      while (left > 0) {
        await setChunk(batchId, 60);
        expect(await runDurableObjectAlarm(batchStub(batchId))).toBe(true);
        const now = await storedPending(batchId);
        expect(left - now).toBe(Math.min(60, left));
        await resetObject(batchStub(batchId)); // mid-sweep: the instance is thrown away
        // The fresh instance finds the alarm the last step armed: due now while rows remain.
        if (now > 0) expect(await alarmAt(batchId)).toBeLessThanOrEqual(Date.now());
        left = now;
        steps++;
      }
      expect(steps).toBe(Math.ceil(249 / 60));
      expect(await storedItems(batchId)).toEqual(linear);
      const stub = batchStub(batchId);
      expect(await stub.startItem(itemIds[1]!)).toEqual({ action: "drop", reason: "BATCH_CANCELLED" });
      await stub.completeItem(itemIds[0]!, running.attempt, { ok: true });
      expect(await expectBalanced(apiKey, [batchId])).toMatchObject({ reserved: 0, used: 2, refunded: 498 });
    });

    // Found with this test: the cancel armed the sweep's alarm only after delivering its refund
    // (an await on the account), so a reset during that await left the batch cancelled with its
    // refund unsent and every item row stored pending, and no alarm to ever do either.
    it("a reset while the cancel delivers its refund keeps the sweep's alarm: the sweep and the refund happen once", async () => {
      const { apiKey, accountId } = await newAccount(10_000);
      const { batchId } = await newBatch(apiKey, 150);
      // No alarm left from the create: only the cancel can arm one.
      for (let k = 0; k < 5 && (await runDurableObjectAlarm(batchStub(batchId))); k++);
      expect(await alarmAt(batchId)).toBeNull();
      const before = await storedItems(batchId);
      const release = await stallDeliveries(batchId);
      const cancelling = cancel(apiKey, batchId);
      await waitFor("the cancel's commit", async () => (await cancelledAt(batchId)) !== null);
      await resetObject(batchStub(batchId)); // the cancel awaits the account: it dies with the object
      release();
      expect((await cancelling).status).toBeGreaterThanOrEqual(500);

      const at = await cancelledAt(batchId);
      // An alarm is armed (the runtime may already have run it, or be retrying it): the rest needs nothing else.
      expect(await alarmAt(batchId)).not.toBeNull();
      await alarmsToQuiet(batchId);
      expect(await storedItems(batchId)).toEqual(linearCancel(before, at!));
      const refunds = (await readLedger(accountId)).filter((e) => e.kind === "refund");
      expect(refunds.map((e) => [e.idempotencyKey, e.amount])).toEqual([[`${batchId}:cancel`, 300]]);
      expect(await expectBalanced(apiKey, [batchId])).toMatchObject({ reserved: 0, used: 0, refunded: 300 });
    });

    // Any call that commits events and then delivers them: the alarm must be armed before the
    // delivery's await, or a reset there leaves the events to whatever wakes the object next.
    it("a reset while a retry delivers its confirm: an alarm is due at once and delivers it; the books balance", async () => {
      const { apiKey } = await newAccount(10_000);
      const { batchId, itemIds } = await newBatch(apiKey, 3);
      const stub = batchStub(batchId);
      for (const id of itemIds) {
        const r = await stub.startItem(id);
        if (r.action !== "run") throw new Error("not started");
        await stub.failItem(id, r.attempt, { code: "HTTP_404", message: "gone" });
      }
      await drainOutbox(batchId);
      // Finished: once the delivery's early alarm has run, the only one left is the retention's, days away.
      for (let k = 0; k < 5 && (await alarmAt(batchId))! - Date.now() < 60_000; k++) {
        await runDurableObjectAlarm(batchStub(batchId));
      }
      expect((await alarmAt(batchId))! - Date.now()).toBeGreaterThan(60_000);
      const release = await stallDeliveries(batchId);
      const retrying = callJson(`/api/batch/scrape/${batchId}/retry`, { method: "POST", headers: keyHeaders(apiKey) });
      await waitFor("the retry's commit", async () => (await storedPending(batchId)) === 3);
      await resetObject(batchStub(batchId)); // the retry awaits the account: it dies with the object
      release();
      expect((await retrying).status).toBeGreaterThanOrEqual(500);
      expect((await alarmAt(batchId))! - Date.now()).toBeLessThanOrEqual(SETTLEMENT_WINDOW_MS);
      expect(await runDurableObjectAlarm(batchStub(batchId))).toBe(true);
      expect(await runInBatch(batchId, (o) => o.toAccount.size())).toBe(0);
      const books = await expectBalanced(apiKey, [batchId]);
      expect(books.reserved).toBeGreaterThan(0); // the retried items' credits, held under a confirmed hold
    });

    it("a reset with a sweep chunk in flight: the committed chunk stays, the retried alarm sweeps the rest", async () => {
      const { apiKey, accountId } = await newAccount(10_000);
      const { batchId, itemIds } = await newBatch(apiKey, 250);
      const leases = await batchStub(batchId).startItems([{ itemId: itemIds[0]! }, { itemId: itemIds[1]! }]);
      const first = leases[0]!;
      if (first.action !== "run") throw new Error("expected a start");
      const before = await storedItems(batchId);
      expect((await cancel(apiKey, batchId)).status).toBe(200);
      const at = (await cancelledAt(batchId))!;
      await setChunk(batchId, 60);
      const release = await stallDeliveries(batchId);
      // A settlement waits in the outbox, so the alarm's delivery (after its sweep step) awaits the account.
      await batchStub(batchId).completeItem(itemIds[0]!, first.attempt, { ok: true });
      const alarm = runDurableObjectAlarm(batchStub(batchId)).then(
        () => "finished",
        () => "failed",
      );
      await waitFor("the alarm's sweep step", async () => (await storedPending(batchId)) === 248 - 60);
      await resetObject(batchStub(batchId));
      release();
      expect(await alarm).toBe("failed");
      expect(await storedPending(batchId)).toBe(248 - 60); // the chunk committed whole, nothing after it

      // The runtime retries an alarm whose handler did not finish (runDurableObjectAlarm removed it first).
      await runInBatch(batchId, async (_o, s) => {
        if ((await s.storage.getAlarm()) === null) await s.storage.setAlarm(Date.now());
      });
      await alarmsToQuiet(batchId);
      const stored = await storedItems(batchId);
      expect(stored[0]!.status).toBe("completed");
      expect(stored.slice(1)).toEqual(linearCancel(before, at).slice(1));
      const consumes = (await readLedger(accountId)).filter((e) => e.kind === "consume");
      expect(consumes).toHaveLength(1); // delivered once, after the reset
      expect(await expectBalanced(apiKey, [batchId])).toMatchObject({ reserved: 2, used: 2, refunded: 496 });
    });
  });
});
