/**
 * GET /api/batch/scrape/:id without limit or cursor answers every item (Spidra's SDK never
 * pages), and stays bounded: inline results stop at ALL_ITEMS_INLINE_BYTES, the rest by URL.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ALL_ITEMS_INLINE_BYTES } from "../../src/batch/item-pages";
import { batchStub, getBatch, newAccount, newBatch } from "../helpers";
import { getJson } from "./support";

const BIG = "x".repeat(200_000); // 200,002 bytes as JSON: five fit in the 1 MiB budget, six do not

async function completeAll(batchId: string, itemIds: string[], withKey: (i: number) => boolean) {
  for (const [i, itemId] of itemIds.entries()) {
    const lease = await batchStub(batchId).startItem(itemId);
    if (lease.action !== "run") throw new Error(`not started: ${lease.reason}`);
    const resultKey = withKey(i) ? `results/${batchId}/${itemId}` : undefined;
    if (resultKey) await env.RESULTS.put(resultKey, BIG, { httpMetadata: { contentType: "text/markdown" } });
    const settled = await batchStub(batchId).completeItem(itemId, lease.attempt, BIG, resultKey ? { resultKey } : {});
    expect(settled).toMatchObject({ ok: true });
  }
}

describe("GET /api/batch/scrape/:id, every item at once", () => {
  it("inlines results up to the budget, then serves the rest by resultUrl; a result with no stored copy stays inline", async () => {
    expect(ALL_ITEMS_INLINE_BYTES).toBe(1024 * 1024);
    const { apiKey } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 8, { output: "markdown", maxConcurrency: 20 });
    await completeAll(batchId, itemIds, (i) => i < 7);
    const r = await getBatch(apiKey, batchId);
    expect(r.status).toBe(200);
    expect(r.body.nextCursor).toBeNull();
    expect(r.body.items).toHaveLength(8);
    const inline = r.body.items.map((i: { result: unknown }) => i.result === BIG);
    expect(inline).toEqual([true, true, true, true, true, false, false, true]);
    for (const item of r.body.items) {
      expect(item.status).toBe("completed");
      if (item.result === null) {
        expect(item.resultUrl).toBe(`/api/batch/scrape/${batchId}/items/${item.uuid}/result`);
        const stored = await getJson(item.resultUrl, apiKey);
        expect(stored.status).toBe(200);
        expect(stored.body).toBe(BIG);
      }
    }
    // Bounded: the budget, plus one result with no stored copy, plus the items' own fields.
    expect(JSON.stringify(r.body).length).toBeLessThan(ALL_ITEMS_INLINE_BYTES + 2 * 200_002 + 20_000);
  });

  it("a page asked for with limit keeps every result inline, as before", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 7, { output: "markdown", maxConcurrency: 20 });
    await completeAll(batchId, itemIds, () => true);
    const r = await getJson(`/api/batch/scrape/${batchId}?limit=100`, apiKey);
    expect(r.body.items.every((i: { result: unknown }) => i.result === BIG)).toBe(true);
  });
});
