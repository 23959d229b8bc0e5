/**
 * Cancel cost against batch size: 1k, 10k and 100k pending items, timed inside the batch
 * object and end to end through the Worker's HTTP handler, each beside what a linear
 * cancel must do in this schema (a bare UPDATE of as many item rows, same table and
 * indexes). The cancel itself writes the batch row and its outbox rows only (issue 15);
 * the alarm's sweep rewrites the item rows afterwards, SWEEP_CHUNK_ROWS per run: its
 * chunks are timed here too (how long one holds the object, and how long a batch takes to
 * settle in storage). Also counts what the account object receives per cancel, the rows
 * the cancel writes and the rows it hands to JavaScript.
 */
import { describe, expect, it } from "vitest";
import { SWEEP_CHUNK_ROWS } from "../src/batch/item-rows";
import type { BenchRow } from "./result";
import { row } from "./result";
import {
  type AccountCalls,
  bare,
  call,
  createBatchRpc,
  keyHeaders,
  newAccount,
  probeSql,
  runInBatch,
  sandwich,
  type SqlCounts,
  sqlOf,
  timed,
  urls,
  watchAccountCalls,
  databaseSize,
} from "./support";

const SIZES = [1_000, 10_000, 100_000] as const;
/** Paired repetitions per size; a 100k round costs ~3 s (two creates, a bare insert), so it gets fewer. */
const REPS: Record<(typeof SIZES)[number], number> = { 1000: 7, 10000: 5, 100000: 3 };

interface SizeDetails {
  items: number;
  createMs: number[];
  bytesStored: number;
  cancelInObjectMs: number[];
  cancelHttpMs: number[];
  bareUpdateMs: number[];
  accountCalls: AccountCalls[];
  sql: SqlCounts[];
  /** One alarm run of the sweep each (SWEEP_CHUNK_ROWS rows), in the object. */
  sweepChunkMs: number[];
  /** All the sweep's alarm runs of one batch, back to back. */
  sweepTotalMs: number[];
}

/** Runs the batch's alarm (its sweep) until no item row is stored pending; times each run. */
async function sweepOut(batchId: string, d: SizeDetails): Promise<void> {
  const chunks: number[] = [];
  for (let k = 0; k < 1000; k++) {
    const left = await runInBatch(
      batchId,
      (_o, s) => s.storage.sql.exec("SELECT 1 FROM items WHERE status = 'pending' LIMIT 1").toArray().length,
    );
    if (left === 0) break;
    chunks.push((await runInBatch(batchId, (o) => timed(() => o.alarm()))).ms);
  }
  d.sweepChunkMs.push(...chunks.slice(0, -1)); // the last chunk is partial
  d.sweepTotalMs.push(chunks.reduce((a, b) => a + b, 0));
}

describe("cancel cost against batch size", () => {
  it("1k, 10k and 100k pending items: one account message per cancel, no item row written, flat in N", async ({
    task,
  }) => {
    const { accountId, apiKey } = await newAccount();
    const rows: BenchRow[] = [];
    const details: SizeDetails[] = [];

    for (const n of SIZES) {
      const list = urls(n);
      const d: SizeDetails = {
        items: n,
        createMs: [],
        bytesStored: 0,
        cancelInObjectMs: [],
        cancelHttpMs: [],
        bareUpdateMs: [],
        accountCalls: [],
        sql: [],
        sweepChunkMs: [],
        sweepTotalMs: [],
      };

      const fresh = async () => {
        const created = await createBatchRpc(accountId, list);
        d.createMs.push(created.createMs);
        d.bytesStored = await databaseSize(created.batchId);
        const calls = await watchAccountCalls(created.batchId);
        d.accountCalls.push(calls);
        return created.batchId;
      };

      const result = await sandwich(
        REPS[n],
        async () => {
          const stub = await bare("batch");
          await stub.insertItems(list);
          const r = await stub.cancelItems();
          expect(r.rows).toBeGreaterThanOrEqual(n);
          d.bareUpdateMs.push(r.ms);
          return r.ms;
        },
        {
          inObject: async () => {
            const batchId = await fresh();
            const probed = await runInBatch(batchId, (o) => probeSql(sqlOf(o), () => timed(() => o.cancel(accountId))));
            const done = probed.value.value;
            if (!done.ok) throw new Error(done.message);
            expect(done.cancelledItems).toBe(n);
            d.sql.push(probed.sql);
            d.cancelInObjectMs.push(probed.value.ms);
            // Settle storage before the next measurement, timing the sweep's chunks.
            await sweepOut(batchId, d);
            return probed.value.ms;
          },
          http: async () => {
            const batchId = await fresh();
            const t = await timed(() =>
              call(`/api/batch/scrape/${batchId}`, { method: "DELETE", headers: keyHeaders(apiKey) }),
            );
            expect(await t.value.json()).toEqual({ status: "cancelled", cancelledItems: n, creditsRefunded: 2 * n });
            d.cancelHttpMs.push(t.ms);
            await sweepOut(batchId, { ...d, sweepChunkMs: [], sweepTotalMs: [] });
            return t.ms;
          },
        },
      );

      // One refund message per cancel, whatever the size: never one per item.
      for (const calls of d.accountCalls) {
        expect(calls.byKind.refund).toBe(1);
        expect(calls.calls).toBe(1);
      }
      // The cancel hands a handful of rows to JavaScript (the batch row, counts), never the items,
      // and writes the same rows whatever the size (the batch row, outbox rows: no item row).
      const maxRows = Math.max(...d.sql.map((s) => s.maxRowsToJs));
      expect(maxRows).toBeLessThan(10);
      for (const s of d.sql) expect(s.rowsWritten).toBeLessThan(20);
      details.push(d);

      const label = n >= 1000 ? `${n / 1000}k` : String(n);
      const baseName = `bare UPDATE of ${label} item rows`;
      rows.push(
        row({
          section: "cancel",
          what: `cancel ${label} pending, in batch object`,
          value: result.subjects.inObject.value,
          unit: "ms",
          baseline: baseName,
          baselineValue: result.baseline,
          ratio: result.subjects.inObject.ratio,
          note: "x of the unavoidable UPDATE",
        }),
        row({
          section: "cancel",
          what: `cancel ${label} pending, HTTP DELETE`,
          value: result.subjects.http.value,
          unit: "ms",
          baseline: baseName,
          baselineValue: result.baseline,
          ratio: result.subjects.http.ratio,
        }),
      );
      const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor((xs.length - 1) / 2)] ?? Number.NaN;
      if (d.sweepChunkMs.length > 0) {
        rows.push(
          row({
            section: "cancel",
            what: `sweep chunk (${SWEEP_CHUNK_ROWS} rows) holds the object, ${label} batch, p50`,
            value: med(d.sweepChunkMs),
            unit: "ms",
            baseline: "cancel in batch object (same size)",
            baselineValue: result.subjects.inObject.value,
            note: `max ${Math.max(...d.sweepChunkMs).toFixed(0)} ms over ${d.sweepChunkMs.length} chunks`,
          }),
        );
      }
      rows.push(
        row({
          section: "cancel",
          what: `sweep of ${label} rows, all chunks back to back`,
          value: med(d.sweepTotalMs),
          unit: "ms",
          baseline: baseName,
          baselineValue: result.baseline,
          note: "storage settles; reads were exact all along",
        }),
      );
      if (n === 100_000) {
        const calls = d.accountCalls[0]!;
        rows.push(
          row({
            section: "cancel",
            what: "account RPCs per cancel (100k)",
            value: calls.calls,
            unit: "calls",
            baseline: "items refunded",
            baselineValue: n,
            note: `${calls.byKind.refund} refund event, ${calls.events} events in all`,
          }),
          row({
            section: "cancel",
            what: "max rows to JS per statement (100k)",
            value: maxRows,
            unit: "rows",
            baseline: "items in the batch",
            baselineValue: n,
            note: `${d.sql[0]!.statements} statements; constant in size`,
          }),
          row({
            section: "cancel",
            what: "rows written by the cancel (100k)",
            value: Math.max(...d.sql.map((s) => s.rowsWritten)),
            unit: "rows",
            baseline: "rows written by the cancel (1k)",
            baselineValue: Math.max(...details[0]!.sql.map((s) => s.rowsWritten)),
            note: "SQLite's rowsWritten, indexes included; flat in N",
          }),
        );
      }
    }

    // Issue 15's targets: 100k no slower than 2x the 1k cancel, and under 40 ms.
    const medOf = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor((xs.length - 1) / 2)]!;
    const c1k = medOf(details[0]!.cancelInObjectMs);
    const c100k = medOf(details[2]!.cancelInObjectMs);
    rows.push(
      row({
        section: "cancel",
        what: "cancel 100k / cancel 1k (in object)",
        value: c100k / Math.max(1, c1k),
        unit: "x",
        baseline: "target",
        baselineValue: 2,
        note: `${c100k.toFixed(0)} ms at 100k (target < 40 ms)`,
      }),
    );
    const chunk = medOf(details[2]!.sweepChunkMs);
    rows.push(
      row({
        section: "cancel",
        what: "1M-item batch settles in storage (extrapolated)",
        value: (1_000_000 / SWEEP_CHUNK_ROWS) * chunk,
        unit: "ms",
        baseline: "sweep chunk p50 (100k batch)",
        baselineValue: chunk,
        note: `${1_000_000 / SWEEP_CHUNK_ROWS} alarm runs, plus the alarm's own turnaround`,
      }),
    );

    // Growth: linear is x10 per step. Compared with how the bare UPDATE itself grows.
    for (const [a, b] of [
      [0, 1],
      [1, 2],
    ] as const) {
      const from = details[a]!;
      const to = details[b]!;
      const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor((xs.length - 1) / 2)]!;
      const growth = med(to.cancelInObjectMs) / Math.max(1, med(from.cancelInObjectMs));
      const bareGrowth = med(to.bareUpdateMs) / Math.max(1, med(from.bareUpdateMs));
      rows.push(
        row({
          section: "cancel",
          what: `growth ${from.items / 1000}k -> ${to.items / 1000}k (in object)`,
          value: growth,
          unit: "x",
          baseline: "bare UPDATE growth",
          baselineValue: bareGrowth,
          note: "linear = x10",
        }),
      );
    }

    // What-if for the scaling notes: the same UPDATEs with the (status, idx) index the schema
    // had until v7, which every status change of every item rewrote. Paired the same way.
    const whatIf = await sandwich(
      3,
      async () => {
        const stub = await bare("batch");
        await stub.insertItems(urls(100_000));
        return (await stub.cancelItems()).ms;
      },
      {
        withStatusIndex: async () => {
          const stub = await bare("batch");
          await stub.addStatusIndex();
          await stub.insertItems(urls(100_000));
          return (await stub.cancelItems()).ms;
        },
      },
    );
    rows.push(
      row({
        section: "cancel",
        what: "what-if: bare UPDATE 100k with the old items_status index",
        value: whatIf.subjects.withStatusIndex.value,
        unit: "ms",
        baseline: "bare UPDATE of 100k item rows",
        baselineValue: whatIf.baseline,
        ratio: whatIf.subjects.withStatusIndex.ratio,
        note: "what dropping it (batch migration v7) saved",
      }),
    );

    task.meta.bench = { rows, details: { sizes: details, whatIfWithStatusIndex: whatIf } };
  });
});
