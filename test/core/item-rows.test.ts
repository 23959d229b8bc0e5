import { describe, expect, it } from "vitest";
import { ITEM_COLUMNS_BUT_RESULT } from "../../src/batch/item-rows";
import { newAccount, newBatch, runInBatch } from "../helpers";

describe("item rows", () => {
  it("the whole-list read names every column of the items table but result (none silently dropped)", async () => {
    const { apiKey } = await newAccount(10);
    const { batchId } = await newBatch(apiKey, 1);
    const columns = await runInBatch(batchId, (_o, state) =>
      state.storage.sql
        .exec<{ name: string }>("SELECT name FROM pragma_table_info('items')")
        .toArray()
        .map((r) => r.name),
    );
    expect(columns).toContain("result");
    expect([...ITEM_COLUMNS_BUT_RESULT].sort()).toEqual(columns.filter((c) => c !== "result").sort());
  });
});
