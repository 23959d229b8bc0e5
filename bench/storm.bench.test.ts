/**
 * Cancel latency while a start storm runs on the same batch. Half the storm's startItem
 * calls are sent before the cancel and half after, all on one stub, without waiting; the
 * cancel's latency (p50, p99 over trials) is printed beside a cancel of an idle batch of
 * the same size, measured in turns with it. The object runs one event at a time, so the
 * cancel waits for the starts that arrived before it: what bounds that queue in
 * production is dispatch flow control (at most maxConcurrency <= 20 messages out per
 * batch), so storms of 20 are the real case and 200 and 2,000 show the slope.
 */
import { describe, expect, it } from "vitest";
import type { BenchRow } from "./result";
import { row } from "./result";
import { bare, batchStub, createBatchRpc, itemIdsOf, newAccount, runInBatch, stats, timed, urls } from "./support";

const STORMS = [20, 200, 2_000] as const;
const TRIALS: Record<(typeof STORMS)[number], number> = { 20: 25, 200: 15, 2000: 6 };
/** Pending items beyond the storm, so every cancel has something to refund. */
const EXTRA = 100;

describe("cancel latency during a start storm", () => {
  it("a cancel waits only for the starts queued before it; starts after it are dropped", async ({ task }) => {
    const { accountId } = await newAccount();
    const rows: BenchRow[] = [];
    const details: Record<string, unknown>[] = [];

    for (const storm of STORMS) {
      const total = storm + EXTRA;
      const idleMs: number[] = [];
      const stormMs: number[] = [];
      const ahead: number[] = [];
      const stormWallMs: number[] = [];

      for (let trial = 0; trial < TRIALS[storm]; trial++) {
        // Baseline: the same cancel with nothing queued.
        const idle = await createBatchRpc(accountId, urls(total));
        const quiet = await timed(async () => await batchStub(idle.batchId).cancel(accountId));
        if (!quiet.value.ok) throw new Error(quiet.value.message);
        idleMs.push(quiet.ms);

        const busy = await createBatchRpc(accountId, urls(total));
        const ids = (await itemIdsOf(busy.batchId)).slice(0, storm);
        const stub = batchStub(busy.batchId);
        const t0 = performance.now();
        const before = ids.slice(0, storm / 2).map((id) => stub.startItem(id));
        const cancelSent = performance.now();
        const cancel = stub.cancel(accountId).then((r) => ({ r, ms: performance.now() - cancelSent }));
        const after = ids.slice(storm / 2).map((id) => stub.startItem(id));
        const done = await cancel;
        const results = await Promise.all([...before, ...after]);
        stormWallMs.push(performance.now() - t0);
        if (!done.r.ok) throw new Error(done.r.message);

        // Every item ends in exactly one state: started before the cancel, or cancelled by it.
        const runs = results.filter((r) => r.action === "run").length;
        for (const r of results) if (r.action === "drop") expect(r.reason).toBe("BATCH_CANCELLED");
        expect(runs + done.r.cancelledItems).toBe(total);
        stormMs.push(done.ms);
        ahead.push(runs);
      }

      const idle = stats(idleMs);
      const busy = stats(stormMs);
      const queued = stats(ahead);
      const perStartMs = Math.max(0, busy.p50 - idle.p50) / Math.max(1, queued.p50);
      details.push({
        storm,
        total,
        idle,
        busy,
        startsAheadOfCancel: queued,
        perQueuedStartMs: perStartMs,
        idleMs,
        stormMs,
        ahead,
        stormWallMs,
      });
      const base = `idle cancel, ${total} items`;
      rows.push(
        row({
          section: "storm",
          what: `cancel p50, storm of ${storm} starts`,
          value: busy.p50,
          unit: "ms",
          baseline: `${base} p50`,
          baselineValue: idle.p50,
          note: `${queued.p50} starts ahead (max ${queued.max})`,
        }),
        row({
          section: "storm",
          what: `cancel p99, storm of ${storm} starts`,
          value: busy.p99,
          unit: "ms",
          baseline: `${base} p99`,
          baselineValue: idle.p99,
          note: `${perStartMs.toFixed(2)} ms per start ahead`,
        }),
      );
    }

    // What a start ahead costs, taken apart (issue 15): the start's own work inside the object
    // (no RPC, one event), beside the floor any write RPC queued ahead costs (a bare object's
    // one-row UPDATE, committed per call): the rest of a start ahead is that floor.
    const N = 200;
    const floorSamples: number[] = [];
    const inObjectSamples: number[] = [];
    for (let trial = 0; trial < 5; trial++) {
      const stub = await bare("counter");
      const idlePing = await timed(() => stub.bump());
      const ahead = Array.from({ length: N }, () => stub.bump());
      const sent = performance.now();
      await stub.bump();
      const queuedMs = performance.now() - sent;
      await Promise.all(ahead);
      floorSamples.push(Math.max(0, queuedMs - idlePing.ms) / N);

      const b = await createBatchRpc(accountId, urls(N + EXTRA));
      const ids = (await itemIdsOf(b.batchId)).slice(0, N);
      const ms = await runInBatch(b.batchId, async (o) => {
        const t0 = performance.now();
        for (const id of ids) await o.startItem(id);
        return performance.now() - t0;
      });
      inObjectSamples.push(ms / N);
    }
    const perStartAhead = (details.find((d) => d.storm === 200)?.perQueuedStartMs as number | undefined) ?? Number.NaN;
    rows.push(
      row({
        section: "storm",
        what: "start ahead of a cancel: the start's own work (in object)",
        value: stats(inObjectSamples).p50,
        unit: "ms",
        baseline: "a start ahead, as the cancel sees it (storm of 200)",
        baselineValue: perStartAhead,
        note: "JS and SQL of one startItem, no RPC",
      }),
      row({
        section: "storm",
        what: "any one-row write RPC queued ahead (bare object)",
        value: stats(floorSamples).p50,
        unit: "ms",
        baseline: "a start ahead, as the cancel sees it (storm of 200)",
        baselineValue: perStartAhead,
        note: "the per-event floor: delivery and commit of one call",
      }),
    );

    task.meta.bench = {
      rows,
      details: { storms: details, inObjectPerStartMs: inObjectSamples, writeRpcFloorMs: floorSamples },
    };
  });
});
