/**
 * Cancel latency while a start storm runs on the same batch. Half the storm's starts are
 * sent before the cancel and half after, all on one stub, without waiting (one startItem
 * call each, or startItems in groups of 10 as the queue consumer sends them); the
 * cancel's latency (p50, p99 over trials) is printed beside a cancel of an idle batch of
 * the same size, measured in turns with it. The object runs one event at a time, so the
 * cancel waits for the starts that arrived before it: what bounds that queue in
 * production is dispatch flow control (at most maxConcurrency <= 20 messages out per
 * batch), so storms of 20 are the real case and 200 and 2,000 show the slope.
 */
import { describe, expect, it } from "vitest";
import type { StartResult } from "../src/domain/executor-contract";
import type { BenchRow } from "./result";
import { row } from "./result";
import { bare, batchStub, createBatchRpc, itemIdsOf, newAccount, runInBatch, stats, timed, urls } from "./support";

const STORMS = [20, 200, 2_000] as const;
const TRIALS: Record<(typeof STORMS)[number], number> = { 20: 25, 200: 15, 2000: 6 };
/**
 * How the starts are sent: one startItem call each (a consumer whose queue batches each hold
 * one message of this batch: the worst case), or startItems in groups of 10, as the consumer
 * sends them (one call per batch object per queue batch; max_batch_size is 10, wrangler.toml).
 */
const SENDS = [
  { name: "single", group: 1, after: true },
  { name: "groups of 10", group: 10, after: true },
  // Tests and bench share one thread with the object: sending the starts that come after the
  // cancel is work on that thread too. Without them, what is left is the object's own cost.
  { name: "single, none sent after", group: 1, after: false },
] as const;
/** Pending items beyond the storm, so every cancel has something to refund. */
const EXTRA = 100;

describe("cancel latency during a start storm", () => {
  it("a cancel waits only for the starts queued before it; starts after it are dropped", async ({ task }) => {
    const { accountId } = await newAccount();
    const rows: BenchRow[] = [];
    const details: Record<string, unknown>[] = [];

    for (const send of SENDS)
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
          const starts = (some: string[]) => {
            const calls: Promise<StartResult[]>[] = [];
            for (let i = 0; i < some.length; i += send.group) {
              const group = some.slice(i, i + send.group);
              calls.push(
                send.group === 1
                  ? stub.startItem(group[0]!).then((r) => [r])
                  : stub.startItems(group.map((itemId) => ({ itemId }))),
              );
            }
            return calls;
          };
          const before = starts(ids.slice(0, storm / 2));
          const cancelSent = performance.now();
          const cancel = stub.cancel(accountId).then((r) => ({ r, ms: performance.now() - cancelSent }));
          const after = send.after ? starts(ids.slice(storm / 2)) : [];
          const done = await cancel;
          const results = (await Promise.all([...before, ...after])).flat();
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
          send: send.name,
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
            what: `cancel p50, storm of ${storm} starts, ${send.name}`,
            value: busy.p50,
            unit: "ms",
            baseline: `${base} p50`,
            baselineValue: idle.p50,
            note: `${queued.p50} starts ahead (max ${queued.max})`,
          }),
          row({
            section: "storm",
            what: `cancel p99, storm of ${storm} starts, ${send.name}`,
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
    const perStartAhead =
      (details.find((d) => d.storm === 200 && d.send === "single")?.perQueuedStartMs as number | undefined) ??
      Number.NaN;
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
