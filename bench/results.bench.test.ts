/**
 * The results download inside workerd, with results: a 20k-item batch whose items are all
 * completed, each with a ~1 KB JSON result inline, and one in 50 stored in R2 instead (the
 * download reads those one at a time). Time per 10k lines of GET .../results (NDJSON and
 * CSV), beside the baseline of reading the same items through the batch object's page read
 * (the RPC the stream pages with), 250 at a time, with nothing else done.
 * Memory is measured from outside workerd, by bench/results-stream.mjs.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { BenchRow } from "./result";
import { row } from "./result";
import { batchStub, call, createBatchRpc, keyHeaders, newAccount, runInBatch, sandwich, urls } from "./support";

const N = 20_000;
const R2_EVERY = 50;

describe("results download", () => {
  it(`${N / 1000}k completed items: time per 10k lines, NDJSON and CSV, beside paging the batch object`, async ({
    task,
  }) => {
    const { accountId, apiKey } = await newAccount();
    const { batchId } = await createBatchRpc(accountId, urls(N));
    const result = JSON.stringify({ title: "A page", text: "x".repeat(1000) });
    const stored = await runInBatch(batchId, (_o, s) => {
      s.storage.sql.exec(
        `UPDATE items SET status = 'completed', attempts = 1, credits_used = 2, finished_at = ?,
           result = CASE WHEN idx % ? = 0 THEN 'null' ELSE ? END,
           result_key = 'results/' || ? || '/' || id`,
        Date.now(),
        R2_EVERY,
        result,
        batchId,
      );
      s.storage.sql.exec("UPDATE batch SET pending = 0, completed = total, finished_at = ?", Date.now());
      return s.storage.sql
        .exec<{ id: string }>("SELECT id FROM items WHERE idx % ? = 0", R2_EVERY)
        .toArray()
        .map((r) => r.id);
    });
    for (const id of stored) await env.RESULTS.put(`results/${batchId}/${id}`, result);

    const download = (format: string) => async () => {
      const t0 = performance.now();
      const res = await call(`/api/batch/scrape/${batchId}/results?format=${format}`, { headers: keyHeaders(apiKey) });
      let lines = 0;
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>)
        for (const b of chunk) if (b === 0x0a) lines++;
      const ms = performance.now() - t0;
      expect(lines).toBe(format === "csv" ? N + 1 : N);
      return ms;
    };
    const pages = async () => {
      const t0 = performance.now();
      let cursor = -1;
      let items = 0;
      for (;;) {
        const got = await batchStub(batchId).get(accountId, cursor, 250);
        if (!got.ok) throw new Error(got.message);
        items += got.items.length;
        if (got.nextCursor === null) break;
        cursor = Number(got.nextCursor);
      }
      expect(items).toBe(N);
      return performance.now() - t0;
    };
    const runs = await sandwich(3, pages, { ndjson: download("ndjson"), csv: download("csv") });
    const per10k = (ms: number) => (ms * 10_000) / N;
    const rows: BenchRow[] = (["ndjson", "csv"] as const).map((format) =>
      row({
        section: "results",
        what: `download ${format}, ${N / 1000}k completed items (1 in ${R2_EVERY} from R2): ms per 10k lines`,
        value: per10k(runs.subjects[format].value),
        unit: "ms",
        baseline: "batch object page reads alone, per 10k items",
        baselineValue: per10k(runs.baseline),
        ratio: runs.subjects[format].ratio,
      }),
    );
    task.meta.bench = { rows, details: { items: N, r2Every: R2_EVERY, ...runs } };
  });
});
