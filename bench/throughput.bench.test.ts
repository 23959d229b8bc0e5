/**
 * Item throughput of one batch object: startItem + completeItem pairs per second (one call
 * each, and grouped as the queue consumer calls: startItems, settleItems), beside
 * the platform's limit for one object measured in the same run: a bare object doing one
 * single-row UPDATE per RPC call, at the same concurrency. Goal: at least half of it.
 * Also inside the object (no RPC), the SQL each call runs, and what happens to both when
 * the account does not take the outbox's events (it is the hot spot, or down).
 *
 * Two things of the local harness shape the set-up:
 * - Dispatch is paused (the bench plays the consumer), so completeItem does not refill
 *   slots; with dispatch on, each completion also runs a SELECT, an UPDATE and an INSERT
 *   into the outbox to the queue.
 * - The test runner and every object share one isolate here, and while RPC traffic is
 *   continuous, timers and alarms do not run (checked: a 300 ms setTimeout did not fire
 *   during a 2 s storm). In production the alarm delivers the outbox within moments, so
 *   the bench runs the object's alarm itself every PUMP_EVERY completions, inside the
 *   measured time (the object pays for delivery either way).
 */
import { describe, expect, it } from "vitest";
import type { BatchObject } from "../src/batch/batch-object";
import { SettleReporter } from "../src/executor/settle-reporter";
import type { BenchRow } from "./result";
import { row } from "./result";
import {
  type AccountCalls,
  bare,
  bareRpcMs,
  batchStub,
  createBatchRpc,
  itemIdsOf,
  newAccount,
  pool,
  probeSql,
  runInBatch,
  sandwich,
  type SqlCounts,
  sqlOf,
  startSqlProbe,
  urls,
  watchAccountCalls,
} from "./support";

const REPS = 3;
/** Messages per queue batch (wrangler.toml max_batch_size): the consumer asks for their leases in one call. */
const QUEUE_BATCH = 10;
const SEQ_PAIRS = 300;
const CONC_PAIRS = 600;
/** The most items one batch has out at once (LIMITS.maxConcurrency). */
const IN_FLIGHT = 20;
const IN_OBJECT_PAIRS = 300;
/** Completions between two runs of the alarm (delivery of the outbox to the account). */
const PUMP_EVERY = 20;
const RESULT = { title: "A page", text: "Some text of a page, as the executor would keep it inline." };

describe("item throughput of one batch object", () => {
  it("startItem + completeItem pairs per second, beside bare single-row UPDATE RPCs", async ({ task }) => {
    const { accountId } = await newAccount();
    const needed = REPS * (SEQ_PAIRS + 3 * CONC_PAIRS + IN_OBJECT_PAIRS) + IN_OBJECT_PAIRS + CONC_PAIRS + 100;
    const { batchId } = await createBatchRpc(accountId, urls(needed));
    const ids = await itemIdsOf(batchId);
    let cursor = 0;
    const take = (n: number) => ids.slice(cursor, (cursor += n));
    const stub = batchStub(batchId);
    const deliveries: AccountCalls = await watchAccountCalls(batchId);
    const outboxSize = () => runInBatch(batchId, (o) => o.toAccount.size());

    let completed = 0;
    const pair = async (id: string, pump = true) => {
      const lease = await stub.startItem(id);
      if (lease.action !== "run") throw new Error(`not started: ${lease.reason}`);
      const done = await stub.completeItem(id, lease.attempt, RESULT);
      if (done.outcome !== "settled") throw new Error(`not settled: ${done.outcome}`);
      if (pump && ++completed % PUMP_EVERY === 0) await runInBatch(batchId, (o) => o.alarm());
    };
    const pairInObject = async (o: BatchObject, id: string) => {
      const lease = await o.startItem(id);
      if (lease.action !== "run") throw new Error("not started");
      await o.completeItem(id, lease.attempt, RESULT);
      if (++completed % PUMP_EVERY === 0) await o.alarm();
    };
    const counter = await bare("counter");
    const rate = (n: number, ms: number) => (n / ms) * 1000;
    // What the queue consumer does (src/executor/consumer.ts): one startItems call per queue
    // batch, then each item's settlement through a SettleReporter (those that come in while
    // a call is out go together). IN_FLIGHT / QUEUE_BATCH queue batches are out at once.
    let groupCalls = 0;
    const consumerPairs = async (batch: string[]) => {
      let next = 0;
      const t0 = performance.now();
      await Promise.all(
        Array.from({ length: IN_FLIGHT / QUEUE_BATCH }, async () => {
          while (next < batch.length) {
            const group = batch.slice(next, (next += QUEUE_BATCH));
            const leases = await stub.startItems(group.map((itemId) => ({ itemId })));
            groupCalls++;
            const reporter = new SettleReporter((reports) => (groupCalls++, stub.settleItems(reports)));
            await Promise.all(
              group.map(async (itemId, i) => {
                const lease = leases[i]!;
                if (lease.action !== "run") throw new Error(`not started: ${lease.reason}`);
                const done = await reporter.report({
                  itemId,
                  attempt: lease.attempt,
                  outcome: "completed",
                  result: RESULT,
                });
                if (done.outcome !== "settled") throw new Error(`not settled: ${done.outcome}`);
                if (++completed % PUMP_EVERY === 0) await runInBatch(batchId, (o) => o.alarm());
              }),
            );
          }
        }),
      );
      return performance.now() - t0;
    };

    // Over RPC, one pair at a time, and IN_FLIGHT at a time (as many as a batch ever has out).
    const seq = await sandwich(REPS, async () => rate(SEQ_PAIRS, await bareRpcMs(counter, SEQ_PAIRS, 1)), {
      pairs: async () => {
        const batch = take(SEQ_PAIRS);
        return rate(SEQ_PAIRS, await pool(SEQ_PAIRS, 1, (i) => pair(batch[i]!)));
      },
    });
    const conc = await sandwich(REPS, async () => rate(CONC_PAIRS, await bareRpcMs(counter, CONC_PAIRS, IN_FLIGHT)), {
      pairs: async () => {
        const batch = take(CONC_PAIRS);
        return rate(CONC_PAIRS, await pool(CONC_PAIRS, IN_FLIGHT, (i) => pair(batch[i]!)));
      },
      grouped: async () => rate(CONC_PAIRS, await consumerPairs(take(CONC_PAIRS))),
    });
    const groupCallsPerPair = groupCalls / (REPS * CONC_PAIRS);

    // Each call alone over RPC, beside the same bare baseline: reads cost what a bare call
    // costs; the writing calls are where the gap is.
    let halves: { ids: string[]; leases: number[] } = { ids: [], leases: [] };
    const split20 = await sandwich(
      REPS,
      async () => rate(CONC_PAIRS, await bareRpcMs(counter, CONC_PAIRS, IN_FLIGHT)),
      {
        read: async () => rate(CONC_PAIRS, await pool(CONC_PAIRS, IN_FLIGHT, () => stub.get(accountId, -1, 1))),
        start: async () => {
          halves = { ids: take(CONC_PAIRS), leases: [] };
          return rate(
            CONC_PAIRS,
            await pool(CONC_PAIRS, IN_FLIGHT, async (i) => {
              const lease = await stub.startItem(halves.ids[i]!);
              if (lease.action !== "run") throw new Error("not started");
              halves.leases[i] = lease.attempt;
            }),
          );
        },
        complete: async () =>
          rate(
            CONC_PAIRS,
            await pool(CONC_PAIRS, IN_FLIGHT, async (i) => {
              await stub.completeItem(halves.ids[i]!, halves.leases[i]!, RESULT);
              if (++completed % PUMP_EVERY === 0) await runInBatch(batchId, (o) => o.alarm());
            }),
          ),
      },
    );

    // Inside the object: no RPC, same methods; beside a plain loop of single-row UPDATEs.
    const inObject = await sandwich(REPS, async () => rate(20_000, (await counter.bumpLoop(20_000)).ms), {
      pairs: async () => {
        const batch = take(IN_OBJECT_PAIRS);
        const ms = await runInBatch(batchId, async (o) => {
          const t0 = performance.now();
          for (const id of batch) await pairInObject(o, id);
          return performance.now() - t0;
        });
        return rate(IN_OBJECT_PAIRS, ms);
      },
    });

    // Where the time goes: each half alone, with the SQL it runs counted.
    await runInBatch(batchId, (o) => o.alarm());
    const starts = take(IN_OBJECT_PAIRS);
    const split = await runInBatch(batchId, async (o) => {
      const leases: number[] = [];
      const start = await probeSql(sqlOf(o), async () => {
        const t0 = performance.now();
        for (const id of starts) {
          const lease = await o.startItem(id);
          if (lease.action !== "run") throw new Error("not started");
          leases.push(lease.attempt);
        }
        return performance.now() - t0;
      });
      const complete = await probeSql(sqlOf(o), async () => {
        const t0 = performance.now();
        for (const [i, id] of starts.entries()) {
          await o.completeItem(id, leases[i]!, RESULT);
          if ((i + 1) % PUMP_EVERY === 0) await o.alarm();
        }
        return performance.now() - t0;
      });
      return { start, complete };
    });

    // The account does not take events (overloaded or down): the outbox grows, and with it the cost of every call.
    await runInBatch(batchId, (o) => o.alarm());
    expect(await outboxSize()).toBe(0);
    const backlogPairs = take(CONC_PAIRS);
    const held = await runInBatch(batchId, (o) => {
      const real = o.toAccount.send;
      o.toAccount.send = async () => {
        throw new Error("bench: account not taking events");
      };
      return { probe: startSqlProbe(sqlOf(o)), restore: () => (o.toAccount.send = real) };
    });
    const backlogMs = await pool(CONC_PAIRS, IN_FLIGHT, (i) => pair(backlogPairs[i]!, false));
    const backlogSql = await runInBatch(batchId, () => {
      held.restore();
      return held.probe.stop();
    });
    const backlogSize = await outboxSize();
    await runInBatch(batchId, (o) => o.alarm());

    const per = (c: SqlCounts, calls: number) => ({
      statements: c.statements / calls,
      rowsToJs: c.rowsToJs / calls,
      rowsRead: c.rowsRead / calls,
      rowsWritten: c.rowsWritten / calls,
      top: c.top,
    });
    const startSql = per(split.start.sql, starts.length);
    const completeSql = per(split.complete.sql, starts.length);
    const backlog = per(backlogSql, CONC_PAIRS);
    const backlogRate = rate(CONC_PAIRS, backlogMs);

    const rows: BenchRow[] = [
      row({
        section: "throughput",
        what: "pairs/s over RPC, 1 in flight",
        value: seq.subjects.pairs.value,
        unit: "pairs/s",
        baseline: "bare 1-row UPDATE RPCs/s, 1 in flight",
        baselineValue: seq.baseline,
        ratio: seq.subjects.pairs.ratio,
        note: "one call per start and per completion: 2 RPCs per pair, so at most ~0.5",
      }),
      row({
        section: "throughput",
        what: `pairs/s over RPC, ${IN_FLIGHT} in flight`,
        value: conc.subjects.pairs.value,
        unit: "pairs/s",
        baseline: `bare 1-row UPDATE RPCs/s, ${IN_FLIGHT} in flight`,
        baselineValue: conc.baseline,
        ratio: conc.subjects.pairs.ratio,
        note: "one call per start and per completion (not how the consumer calls)",
      }),
      row({
        section: "throughput",
        what: `pairs/s as the consumer calls, ${IN_FLIGHT} in flight`,
        value: conc.subjects.grouped.value,
        unit: "pairs/s",
        baseline: `bare 1-row UPDATE RPCs/s, ${IN_FLIGHT} in flight`,
        baselineValue: conc.baseline,
        ratio: conc.subjects.grouped.ratio,
        note: `goal >= 0.5; startItems per queue batch of ${QUEUE_BATCH}, grouped settlements: ${groupCallsPerPair.toFixed(2)} RPCs per pair`,
      }),
      row({
        section: "throughput",
        what: `status reads/s over RPC, ${IN_FLIGHT} in flight`,
        value: split20.subjects.read.value,
        unit: "calls/s",
        baseline: `bare 1-row UPDATE RPCs/s, ${IN_FLIGHT} in flight`,
        baselineValue: split20.baseline,
        ratio: split20.subjects.read.ratio,
      }),
      row({
        section: "throughput",
        what: `startItem/s alone, ${IN_FLIGHT} in flight`,
        value: split20.subjects.start.value,
        unit: "calls/s",
        baseline: `bare 1-row UPDATE RPCs/s, ${IN_FLIGHT} in flight`,
        baselineValue: split20.baseline,
        ratio: split20.subjects.start.ratio,
      }),
      row({
        section: "throughput",
        what: `completeItem/s alone, ${IN_FLIGHT} in flight`,
        value: split20.subjects.complete.value,
        unit: "calls/s",
        baseline: `bare 1-row UPDATE RPCs/s, ${IN_FLIGHT} in flight`,
        baselineValue: split20.baseline,
        ratio: split20.subjects.complete.ratio,
      }),
      row({
        section: "throughput",
        what: "pairs/s inside the object (no RPC)",
        value: inObject.subjects.pairs.value,
        unit: "pairs/s",
        baseline: "bare 1-row UPDATEs/s in a loop",
        baselineValue: inObject.baseline,
        ratio: inObject.subjects.pairs.ratio,
        note: `${(startSql.statements + completeSql.statements).toFixed(0)} statements and the alarm's share per pair`,
      }),
      row({
        section: "throughput",
        what: "SQL statements per startItem",
        value: startSql.statements,
        unit: "stmts",
        baseline: "needed: read batch + item, write both",
        baselineValue: 4,
        note: `${startSql.rowsRead.toFixed(1)} rows read, ${startSql.rowsWritten.toFixed(1)} written`,
      }),
      row({
        section: "throughput",
        what: "SQL statements per completeItem",
        value: completeSql.statements,
        unit: "stmts",
        baseline: "needed: same + one outbox row",
        baselineValue: 5,
        note: `${completeSql.rowsRead.toFixed(1)} rows read, ${completeSql.rowsWritten.toFixed(1)} written`,
      }),
      row({
        section: "throughput",
        what: `pairs/s, account not taking events (${CONC_PAIRS} pairs)`,
        value: backlogRate,
        unit: "pairs/s",
        baseline: `pairs/s, ${IN_FLIGHT} in flight, outbox delivered`,
        baselineValue: conc.subjects.pairs.value,
        note: `${backlog.rowsRead.toFixed(0)} rows read per pair; outbox ended at ${backlogSize}`,
      }),
    ];
    task.meta.bench = {
      rows,
      details: {
        seq,
        conc,
        inObject,
        split20,
        groupCallsPerPair,
        startInObjectMsPerCall: split.start.value / starts.length,
        completeInObjectMsPerCall: split.complete.value / starts.length,
        startSql,
        completeSql,
        backlog: { pairs: CONC_PAIRS, ms: backlogMs, outboxAtEnd: backlogSize, perPair: backlog },
        accountDeliveries: { ...deliveries, eventsPerCall: deliveries.events / Math.max(1, deliveries.calls) },
      },
    };
  });
});
