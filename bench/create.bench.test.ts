/**
 * Batch creation: 1k- and 10k-URL batches through HTTP (POST /api/batch/scrape: parse,
 * validate every URL, reserve at the account, create in the batch object) and through the
 * objects' RPC alone, plus a 100k batch through RPC; time and bytes stored
 * (ctx.storage.sql.databaseSize), beside a bare object inserting the same URLs into the
 * same table with the same statement.
 */
import { describe, expect, it } from "vitest";
import type { BenchRow } from "./result";
import { row } from "./result";
import { bare, call, createBatchRpc, databaseSize, keyHeaders, newAccount, sandwich, timed, urls } from "./support";

const SIZES = [1_000, 10_000, 100_000] as const;
/** 100k goes through RPC only: its JSON body is ~8 MB, and the 1k/10k rows already show what HTTP adds. */
const REPS: Record<(typeof SIZES)[number], number> = { 1000: 5, 10000: 3, 100000: 1 };

describe("batch creation", () => {
  it("1k and 10k URLs over HTTP and RPC, 100k over RPC: time and bytes stored", async ({ task }) => {
    const { accountId, apiKey } = await newAccount();
    const rows: BenchRow[] = [];
    const details: Record<string, unknown>[] = [];

    for (const n of SIZES) {
      const list = urls(n);
      const urlBytes = list.reduce((sum, u) => sum + u.length, 0);
      let bareBytes = 0;
      let batchBytes = 0;
      const subjects: Record<string, () => Promise<number>> = {
        rpc: async () => {
          const created = await createBatchRpc(accountId, list);
          batchBytes = await databaseSize(created.batchId);
          return created.reserveMs + created.createMs;
        },
      };
      if (n <= 10_000) {
        subjects.http = async () => {
          const t = await timed(() =>
            call("/api/batch/scrape", {
              method: "POST",
              headers: keyHeaders(apiKey),
              body: JSON.stringify({ urls: list }),
            }),
          );
          expect(t.value.status).toBe(202);
          await t.value.body?.cancel();
          return t.ms;
        };
      }
      const result = await sandwich(
        REPS[n],
        async () => {
          const r = await (await bare("batch")).insertItems(list);
          bareBytes = r.bytes;
          return r.ms;
        },
        subjects,
      );

      const label = `${n / 1000}k`;
      const base = `bare insert of ${label} items`;
      if (result.subjects.http) {
        rows.push(
          row({
            section: "create",
            what: `create ${label} URLs, HTTP POST`,
            value: result.subjects.http.value,
            unit: "ms",
            baseline: base,
            baselineValue: result.baseline,
            ratio: result.subjects.http.ratio,
          }),
        );
      }
      rows.push(
        row({
          section: "create",
          what: `create ${label} URLs, RPC (reserve + create)`,
          value: result.subjects.rpc!.value,
          unit: "ms",
          baseline: base,
          baselineValue: result.baseline,
          ratio: result.subjects.rpc!.ratio,
        }),
        row({
          section: "create",
          what: `bytes stored, ${label} URLs`,
          value: batchBytes,
          unit: "bytes",
          baseline: `bare object, same ${label} items`,
          baselineValue: bareBytes,
          note: `${Math.round(batchBytes / n)} B/item for ${Math.round(urlBytes / n)} B of URL`,
        }),
      );
      details.push({ items: n, urlBytes, batchBytes, bareBytes, ...result });
    }

    task.meta.bench = { rows, details: { sizes: details } };
  });
});
