/**
 * Cancel cost against batch size: 1k, 10k and 100k pending items, timed inside the batch
 * object and end to end through the Worker's HTTP handler, each beside the one statement
 * a cancel cannot avoid in this schema (a bare UPDATE of as many item rows, same table
 * and indexes). Also counts what the account object receives per cancel and how many
 * rows the cancel hands to JavaScript.
 */
import { describe, expect, it } from "vitest";
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
}

describe("cancel cost against batch size", () => {
  it("1k, 10k and 100k pending items: one account message per cancel, no full-table read, linear growth", async ({
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
            return probed.value.ms;
          },
          http: async () => {
            const batchId = await fresh();
            const t = await timed(() =>
              call(`/api/batch/scrape/${batchId}`, { method: "DELETE", headers: keyHeaders(apiKey) }),
            );
            expect(await t.value.json()).toEqual({ status: "cancelled", cancelledItems: n, creditsRefunded: 2 * n });
            d.cancelHttpMs.push(t.ms);
            return t.ms;
          },
        },
      );

      // One refund message per cancel, whatever the size: never one per item.
      for (const calls of d.accountCalls) {
        expect(calls.byKind.refund).toBe(1);
        expect(calls.calls).toBe(1);
      }
      // The cancel hands a handful of rows to JavaScript (the batch row, counts), never the items.
      const maxRows = Math.max(...d.sql.map((s) => s.maxRowsToJs));
      expect(maxRows).toBeLessThan(10);
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
        );
      }
    }

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
