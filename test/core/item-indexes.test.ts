/**
 * Items are found through partial indexes (batch migration v7): a cancel reads the pending
 * items, not the batch; a batch made before v7 gets the new indexes on its first call.
 */
import { evictDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { BATCH_MIGRATIONS } from "../../src/batch/schema";
import { batchStub, newAccount, newBatch, runInBatch, watchSql } from "../helpers";

const indexes = (batchId: string) =>
  runInBatch(batchId, (_o, s) =>
    s.storage.sql
      .exec<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'items'")
      .toArray()
      .map((r) => r.name),
  );

describe("item indexes", () => {
  it("a cancel reads the pending items only, whatever the size of the batch", async () => {
    const { apiKey, accountId } = await newAccount(10_000);
    const { batchId } = await newBatch(apiKey, 1000);
    // 995 items already done (written directly: only the reads are measured here).
    await runInBatch(batchId, (_o, s) => {
      s.storage.sql.exec("UPDATE items SET status = 'completed' WHERE idx >= 5");
      s.storage.sql.exec("UPDATE items SET dispatched_at = 1 WHERE idx < 2"); // both partial indexes hold some
      s.storage.sql.exec("UPDATE batch SET pending = 5, completed = 995, started_at = 1, status = 'running'");
    });
    const { value: cancelled, runs } = await runInBatch(batchId, (o, s) =>
      watchSql(s.storage.sql, () => o.cancel(accountId)),
    );
    expect(cancelled).toMatchObject({ ok: true, cancelledItems: 5 });
    const updates = runs.filter((r) => /^\s*UPDATE items/.test(r.query));
    expect(updates).toHaveLength(2); // one per partial index of pending items
    const read = updates.reduce((n, r) => n + r.cursor.rowsRead, 0);
    expect(read).toBeLessThan(50); // 5 pending items, not 1000
    const left = await runInBatch(
      batchId,
      (_o, s) => s.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM items WHERE status = 'pending'").one().n,
    );
    expect(left).toBe(0);
  });

  it("a batch made before v7 gets the new indexes on its next call", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 2);
    await runInBatch(batchId, (_o, s) => {
      s.storage.sql.exec("DROP INDEX items_failed");
      s.storage.sql.exec("CREATE INDEX items_status ON items (status, idx)");
      // Undo what came after v7 too (v8 added a column), then say v7 has not run.
      s.storage.sql.exec("ALTER TABLE batch DROP COLUMN scrape_options");
      s.storage.sql.exec(
        "UPDATE _schema SET version = ?",
        BATCH_MIGRATIONS.findIndex((m) => m.includes("-- v7:")),
      );
    });
    await evictDurableObject(batchStub(batchId));
    expect(await indexes(batchId)).toContain("items_status");
    expect(await batchStub(batchId).startItem(itemIds[0]!)).toMatchObject({ action: "run" });
    const after = await indexes(batchId);
    expect(after).toContain("items_failed");
    expect(after).not.toContain("items_status");
  });
});
