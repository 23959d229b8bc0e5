import { describe, expect, it } from "vitest";
import { batchStub, callJson, expectBalanced, getCredits, keyHeaders, newAccount, newBatch } from "../helpers";

describe("smoke", () => {
  it("create, start two, cancel, complete", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 10);
    expect(await getCredits(apiKey)).toMatchObject({ balance: 80, reserved: 20 });
    const stub = batchStub(batchId);
    const a = await stub.startItem(itemIds[0]!);
    const b = await stub.startItem(itemIds[1]!);
    expect(a.action).toBe("run");
    const cancel = await callJson(`/api/batch/scrape/${batchId}`, { method: "DELETE", headers: keyHeaders(apiKey) });
    expect(cancel.status).toBe(200);
    expect(cancel.body).toEqual({ status: "cancelled", cancelledItems: 8, creditsRefunded: 16 });
    if (a.action === "run" && b.action === "run") {
      await stub.completeItem(itemIds[0]!, a.attempt, { ok: 1 });
      await stub.completeItem(itemIds[1]!, b.attempt, { ok: 2 });
    }
    const c = await expectBalanced(apiKey, [batchId]);
    expect(c).toMatchObject({ balance: 96, reserved: 0, used: 4, refunded: 16 });
  });
});
