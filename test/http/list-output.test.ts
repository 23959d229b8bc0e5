/** Listings' outputFormat: from the account's index, or from the batch object for a batch indexed before the index kept it. */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { AccountObject } from "../../src/account/account-object";
import { accountStub, newAccount, newBatch } from "../helpers";
import { listBatches } from "./support";

describe("GET /api/batch/scrape outputFormat", () => {
  it("a batch indexed before migration v9 (output NULL) still lists its own format, asked from its batch object", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const md = await newBatch(apiKey, 1, { output: "markdown" });
    const js = await newBatch(apiKey, 1, { output: "json" });
    await runInDurableObject(accountStub(accountId), (_o: AccountObject, state) => {
      state.storage.sql.exec("UPDATE batches SET output = NULL");
    });
    const r = await listBatches(apiKey);
    expect(r.body.jobs.map((j: { uuid: string; outputFormat: string }) => [j.uuid, j.outputFormat])).toEqual([
      [js.batchId, "json"],
      [md.batchId, "markdown"],
    ]);
  });
});
