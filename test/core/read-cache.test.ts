import { describe, expect, it } from "vitest";
import { batchStub, getBatch, newAccount, newBatch, runInBatch, watchSql } from "../helpers";

/** The statements a status poll runs in the batch object, and its answer. */
async function poll(accountId: string, batchId: string) {
  const { value, runs } = await runInBatch(batchId, (o, s) =>
    watchSql(s.storage.sql, () => o.getJson(accountId, -1, 50)),
  );
  if (!value.ok) throw new Error(value.message);
  const reads = (table: RegExp) => runs.filter((r) => table.test(r.query)).length;
  return { body: JSON.parse(value.json), itemReads: reads(/FROM items/), batchReads: reads(/FROM batch\b/) };
}

describe("the batch row and polls' answers kept while storage does not change", () => {
  it("a repeated poll reads no item row and no batch row; any change is seen by the next poll; the body is the route's", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 3);
    const first = await poll(accountId, batchId);
    expect(first.itemReads).toBeGreaterThan(0);
    const again = await poll(accountId, batchId);
    expect(again.itemReads).toBe(0);
    expect(again.batchReads).toBe(0);
    expect(again.body).toEqual(first.body);

    // The route answers the same body.
    const route = await getBatch(apiKey, batchId);
    expect(route.status).toBe(200);
    expect(route.res.headers.get("content-type")).toBe("application/json");
    expect(route.body).toEqual({ ...first.body });

    const lease = await batchStub(batchId).startItem(itemIds[0]!);
    if (lease.action !== "run") throw new Error("not started");
    const started = await poll(accountId, batchId);
    expect(started.itemReads).toBeGreaterThan(0);
    expect(started.batchReads).toBe(1);
    expect(started.body).toMatchObject({ status: "running", runningCount: 1, pendingCount: 2 });
    expect(started.body.items[0]).toMatchObject({ status: "running", attempts: 1 });
    expect((await getBatch(apiKey, batchId)).body).toEqual(started.body);

    await batchStub(batchId).completeItem(itemIds[0]!, lease.attempt, { ok: 1 });
    const done = await poll(accountId, batchId);
    expect(done.body.items[0]).toMatchObject({ status: "completed" });
  });
});

describe("the kept batch row", () => {
  it("is frozen: a caller that writes into it fails loudly instead of changing what the next caller reads", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 2);
    const mutated = await runInBatch(batchId, (o) => {
      const row = (o as unknown as { owned(a: string): { pending: number } | undefined }).owned(accountId)!;
      try {
        row.pending = 0;
        return "mutated";
      } catch {
        return "refused";
      }
    });
    expect(mutated).toBe("refused");
    expect((await poll(accountId, batchId)).body).toMatchObject({ pendingCount: 2 });
  });
});
