/** A slot claim reads the batches that hold or wait for slots, not every batch the account ever had. */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { accountStub, newAccount, watchSql } from "../helpers";

describe("slot claims", () => {
  it("read about the same rows with 20 or 2,000 finished batches in the account", async () => {
    const rowsRead = async (finished: number) => {
      const { accountId } = await newAccount(100);
      return runInDurableObject(accountStub(accountId), async (o, state) => {
        const sql = state.storage.sql;
        // Finished batches keep a row with nothing granted or wanted; three batches hold slots.
        sql.exec(
          "INSERT INTO slots (batch_id, granted, wanted, version) SELECT 'done-' || value, 0, 0, 1 FROM json_each(?)",
          JSON.stringify(Array.from({ length: finished }, (_, i) => i)),
        );
        for (const id of ["a", "b", "c"])
          sql.exec("INSERT INTO slots (batch_id, granted, wanted, version) VALUES (?, 2, 2, 1)", id);
        const { runs } = await watchSql(sql, () => {
          expect(o.claimSlots("new", 1, 5)).toBe(5); // cap 50 (default) minus 6 held
          expect(o.claimSlots("a", 2, 1)).toBe(1); // gives one back
        });
        return runs.reduce((n, r) => n + r.cursor.rowsRead, 0);
      });
    };
    const small = await rowsRead(20);
    const big = await rowsRead(2_000);
    expect(small).toBeGreaterThan(0); // the statements were seen
    expect(big).toBeLessThan(100);
    expect(big).toBeLessThanOrEqual(small + 10);
  });
});
