import { describe, expect, it } from "vitest";
import { adminHeaders, batchStub, callJson, drainOutbox, keyHeaders, newAccount, newBatch } from "../helpers";

function close(accountId: string) {
  return callJson(`/admin/accounts/${accountId}`, { method: "DELETE", headers: adminHeaders });
}

describe("DELETE /admin/accounts/:accountId", () => {
  it("revokes every key at once, cancels active batches with refunds, lets running items finish and be charged", async () => {
    const { accountId, apiKey } = await newAccount(100);
    const second = await callJson(`/admin/accounts/${accountId}/keys`, {
      method: "POST",
      headers: adminHeaders,
      body: "{}",
    });
    const pending = await newBatch(apiKey, 3);
    const running = await newBatch(apiKey, 2);
    const lease = await batchStub(running.batchId).startItem(running.itemIds[0]!);
    if (lease.action !== "run") throw new Error("not started");

    const res = await close(accountId);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      accountId,
      keysRevoked: 2,
      batchesCancelled: 2,
      batchesFailedToCancel: 0,
      creditsRefunded: 8,
    });
    expect(Date.parse(res.body.closedAt)).toBeGreaterThan(Date.now() - 60_000);

    for (const key of [apiKey, second.body.apiKey]) {
      expect((await callJson("/api/credits", { headers: keyHeaders(key) })).status).toBe(403);
    }
    // The running item still finishes and is charged; the books close exactly.
    await batchStub(running.batchId).completeItem(running.itemIds[0]!, lease.attempt, {});
    await drainOutbox(running.batchId);
    await drainOutbox(pending.batchId);
    const account = await callJson(`/admin/accounts/${accountId}`, { headers: adminHeaders });
    expect(account.body.credits).toEqual({ granted: 100, balance: 98, reserved: 0, used: 2, refunded: 8 });
    expect(account.body.keys.every((k: { revokedAt: string | null }) => k.revokedAt !== null)).toBe(true);
  });

  it("a closed account accepts no new credits or keys, and closing again changes nothing", async () => {
    const { accountId } = await newAccount(10);
    await close(accountId);
    const grant = await callJson(`/admin/accounts/${accountId}/credits`, {
      method: "POST",
      headers: adminHeaders,
      body: JSON.stringify({ amount: 5 }),
    });
    expect(grant.status).toBe(409);
    expect(grant.body.code).toBe("ACCOUNT_CLOSED");
    const key = await callJson(`/admin/accounts/${accountId}/keys`, {
      method: "POST",
      headers: adminHeaders,
      body: "{}",
    });
    expect(key.status).toBe(409);
    const again = await close(accountId);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ keysRevoked: 0, batchesCancelled: 0, creditsRefunded: 0 });
  });

  it("keeps the batches readable to the operator's ledger: nothing is deleted at closing", async () => {
    const { accountId, apiKey } = await newAccount(10);
    const { batchId } = await newBatch(apiKey, 1);
    await close(accountId);
    await drainOutbox(batchId);
    const account = await callJson(`/admin/accounts/${accountId}`, { headers: adminHeaders });
    expect(account.body.credits).toMatchObject({ balance: 10, refunded: 2 });
    // The batch object still holds the batch (retention removes it later).
    const view = await batchStub(batchId).get(accountId, -1, 1);
    expect(view).toMatchObject({ ok: true, batch: { status: "cancelled" } });
  });

  it("404 for an unknown account, 401 without the admin token", async () => {
    expect((await close(crypto.randomUUID())).status).toBe(404);
    const res = await callJson(`/admin/accounts/${crypto.randomUUID()}`, { method: "DELETE" });
    expect(res.status).toBe(401);
  });
});
