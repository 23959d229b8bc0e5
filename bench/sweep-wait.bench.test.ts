/**
 * Waits during a sweep (issue 15): while the alarm rewrites a cancelled 100k-item batch's
 * rows, SWEEP_CHUNK_ROWS per run, a start, a status read and a second cancel arrive. Each is
 * sent right after a sweep chunk was sent, so it queues behind that chunk; its latency is
 * paired with the same call on the same batch just before, with nothing running. The wait a
 * chunk adds (during minus idle) is printed beside one chunk's time in the same run: the
 * target is that none waits longer than one chunk.
 */
import { describe, expect, it } from "vitest";
import type { BenchRow } from "./result";
import { row } from "./result";
import { batchStub, createBatchRpc, newAccount, runInBatch, stats, timed, urls } from "./support";

const ITEMS = 100_000;
const OPS = ["start", "status read", "second cancel"] as const;
type Op = (typeof OPS)[number];

describe("waits during a sweep", () => {
  it("a start, a status read and a second cancel each wait at most one chunk", async ({ task }) => {
    const { accountId } = await newAccount();
    const { batchId } = await createBatchRpc(accountId, urls(ITEMS));
    const ids = await runInBatch(batchId, (_o, s) =>
      s.storage.sql
        .exec<{ id: string }>("SELECT id FROM items ORDER BY idx LIMIT 100")
        .toArray()
        .map((r) => r.id),
    );
    const stub = batchStub(batchId);
    const cancelled = await stub.cancel(accountId);
    if (!cancelled.ok) throw new Error(cancelled.message);
    expect(cancelled.cancelledItems).toBe(ITEMS);

    const call: Record<Op, (k: number) => Promise<void>> = {
      start: async (k) => {
        expect(await stub.startItem(ids[k % ids.length]!)).toEqual({ action: "drop", reason: "BATCH_CANCELLED" });
      },
      "status read": async () => {
        const read = await stub.get(accountId, -1, 50);
        if (!read.ok) throw new Error(read.message);
        expect(read.items.every((i) => i.status === "cancelled")).toBe(true);
      },
      "second cancel": async () => {
        expect((await stub.cancel(accountId)).ok).toBe(false);
      },
    };
    const pendingRows = () =>
      runInBatch(
        batchId,
        (_o, s) => s.storage.sql.exec("SELECT 1 FROM items WHERE status = 'pending' LIMIT 1").toArray().length,
      );

    const chunkMs: number[] = [];
    const idle: Record<Op, number[]> = { start: [], "status read": [], "second cancel": [] };
    const during: Record<Op, number[]> = { start: [], "status read": [], "second cancel": [] };
    for (let k = 0; k < 200 && (await pendingRows()) > 0; k++) {
      const op = OPS[k % OPS.length]!;
      idle[op].push((await timed(() => call[op](k))).ms);
      const chunk = runInBatch(batchId, (o) => timed(() => o.alarm()));
      const waited = timed(() => call[op](k)); // queued behind the chunk
      const [c, w] = await Promise.all([chunk, waited]);
      chunkMs.push(c.ms);
      during[op].push(w.ms);
    }
    expect(await pendingRows()).toBe(0);

    const chunk = stats(chunkMs.slice(0, -1)); // the last chunk is partial
    const rows: BenchRow[] = [];
    const details: Record<string, unknown> = { chunkMs, idle, during };
    for (const op of OPS) {
      const waits = during[op].map((ms, i) => Math.max(0, ms - idle[op][i]!));
      const wait = stats(waits);
      details[`${op} wait`] = waits;
      rows.push(
        row({
          section: "cancel",
          what: `${op} during a sweep chunk (100k batch): wait p50`,
          value: wait.p50,
          unit: "ms",
          baseline: "one sweep chunk, p50",
          baselineValue: chunk.p50,
          note: `max ${wait.max} ms (longest chunk ${chunk.max} ms); idle call p50 ${stats(idle[op]).p50} ms; ${waits.length} samples`,
        }),
      );
    }
    task.meta.bench = { rows, details };
  });
});
