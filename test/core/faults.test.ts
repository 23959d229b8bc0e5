import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { AccountObject } from "../../src/account/account-object";
import type { AccountEvent } from "../../src/domain/account-events";
import {
  accountStub,
  batchStub,
  callJson,
  drainOutbox,
  expectBalanced,
  getBatch,
  getCredits,
  interceptReserveHold,
  keyHeaders,
  newAccount,
  newBatch,
  runInBatch,
} from "../helpers";

type Send = (events: AccountEvent[]) => Promise<void>;

/** Makes the batch object's next `n` deliveries fail; `applyFirst` = the account applies them but the reply is lost. */
async function failDeliveries(batchId: string, n: number, applyFirst = false) {
  await runInBatch(batchId, (o) => {
    const real: Send = o.toAccount.send;
    let left = n;
    o.toAccount.send = async (events) => {
      if (left-- > 0) {
        if (applyFirst) await real(events);
        throw new Error("injected delivery failure");
      }
      return real(events);
    };
  });
}

/** The batch object's half of a create (one URL, json) for a reservation the test made by hand. */
function createReserved(accountId: string, reserved: { batchId: string; holdKey: string }) {
  return batchStub(reserved.batchId).create({
    batchId: reserved.batchId,
    accountId,
    holdKey: reserved.holdKey,
    urls: ["https://example.com/"],
    output: "json",
    selectors: null,
    maxConcurrency: 5,
    creditsPerItem: 2,
    slotsGranted: 1,
  });
}

/** Time passes beyond every hold's deadline (the account's alarm then asks about them). */
async function expireHolds(account: DurableObjectStub<AccountObject>) {
  await runInDurableObject(account, (_o: AccountObject, s) =>
    s.storage.sql.exec("UPDATE holds SET deadline = ?", Date.now() - 1),
  );
}

async function ledgerRefunds(apiKey: string) {
  const { body } = await callJson("/api/credits/ledger?limit=100", { headers: keyHeaders(apiKey) });
  return body.entries.filter((e: { kind: string }) => e.kind === "refund");
}

describe("outbox delivery faults", () => {
  it.each([
    ["fails before the account applies it", false],
    ["is applied but its reply is lost", true],
  ])("a cancel refund whose first delivery %s is retried by the alarm and applied once", async (_name, applyFirst) => {
    const { apiKey } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 5);
    await failDeliveries(batchId, 1, applyFirst);
    const res = await callJson(`/api/batch/scrape/${batchId}`, { method: "DELETE", headers: keyHeaders(apiKey) });
    expect(res.body).toEqual({ status: "cancelled", cancelledItems: 5, creditsRefunded: 10 });
    // The event is still in the outbox and an alarm is armed to send it again.
    expect(await runInBatch(batchId, (o) => o.toAccount.size())).toBeGreaterThan(0);
    expect(await runInBatch(batchId, (_o, s) => s.storage.getAlarm())).not.toBeNull();
    expect(await runDurableObjectAlarm(batchStub(batchId))).toBe(true);
    // Send it a few more times: still applied once.
    await drainOutbox(batchId);
    expect(await ledgerRefunds(apiKey)).toHaveLength(1);
    expect(await expectBalanced(apiKey, [batchId])).toMatchObject({ balance: 100, reserved: 0, refunded: 10 });
  });

  it("the same events delivered twice by hand change nothing the second time", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 2);
    const events: AccountEvent[] = [
      { kind: "consume", key: `${batchId}:${itemIds[0]}:r1:consume`, amount: 2, itemId: itemIds[0]! },
    ];
    expect(await accountStub(accountId).applyBatchEvents(batchId, events)).toEqual({ ok: true, applied: 1 });
    expect(await accountStub(accountId).applyBatchEvents(batchId, events)).toEqual({ ok: true, applied: 0 });
    expect(await getCredits(apiKey)).toMatchObject({ used: 2, reserved: 2 });
  });

  it("a settlement that would release more than the batch holds is refused whole, not applied in part", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 1);
    const events: AccountEvent[] = [
      { kind: "consume", key: "k1", amount: 2, itemId: "a" },
      { kind: "consume", key: "k2", amount: 2, itemId: "b" },
    ];
    expect(await accountStub(accountId).applyBatchEvents(batchId, events)).toMatchObject({
      ok: false,
      code: "INTERNAL_ERROR",
      message: expect.stringMatching(/cannot release/),
    });
    expect(await getCredits(apiKey)).toMatchObject({ used: 0, reserved: 2 });
  });
});

describe("eviction", () => {
  it("a batch object evicted mid-batch loses nothing: leases, counts and undelivered events survive", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 6);
    const stub = batchStub(batchId);
    const leases = [];
    for (const id of itemIds.slice(0, 3)) {
      const r = await stub.startItem(id);
      if (r.action === "run") leases.push(r);
    }
    await failDeliveries(batchId, 100);
    await stub.completeItem(leases[0]!.itemId, leases[0]!.attempt, { n: 0 });
    await runInBatch(batchId, (o) => o.alarm()); // fails: the consume stays in the outbox
    await evictDurableObject(stub);

    const fresh = batchStub(batchId);
    expect(await fresh.startItem(leases[1]!.itemId)).toEqual({ action: "drop", reason: "ITEM_NOT_PENDING" });
    await fresh.completeItem(leases[1]!.itemId, leases[1]!.attempt, { n: 1 });
    const cancel = await callJson(`/api/batch/scrape/${batchId}`, { method: "DELETE", headers: keyHeaders(apiKey) });
    expect(cancel.body).toEqual({ status: "cancelled", cancelledItems: 3, creditsRefunded: 6 });
    await evictDurableObject(fresh);
    await batchStub(batchId).completeItem(leases[2]!.itemId, leases[2]!.attempt, { n: 2 });
    const { body } = await getBatch(apiKey, batchId);
    expect(body).toMatchObject({
      completedCount: 3,
      cancelledCount: 3,
      runningCount: 0,
      creditsUsed: 6,
      creditsRefunded: 6,
    });
    expect(await expectBalanced(apiKey, [batchId])).toMatchObject({ used: 6, refunded: 6, reserved: 0, balance: 94 });
  });
});

describe("a Worker that dies between the account and the batch object", () => {
  it("a reservation whose batch was never created is released by the account's alarm, and the batch can no longer be created", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const account = accountStub(accountId);
    const reserved = await account.reserveBatch({
      output: "json",
      total: 5,
      amount: 10,
      wantedSlots: 5,
      maxActiveBatches: 100,
      idempotencyKey: "die-1",
      requestHash: "h",
    });
    if (!reserved.ok) throw new Error("not reserved");
    expect(await getCredits(apiKey)).toMatchObject({ balance: 90, reserved: 10 });

    // Time passes beyond the hold's deadline; the alarm asks the batch object, which never heard of it.
    await expireHolds(account);
    expect(await runDurableObjectAlarm(account)).toBe(true);
    expect(await getCredits(apiKey)).toMatchObject({ balance: 100, reserved: 0, refunded: 10 });
    const list = await callJson("/api/batch/scrape", { headers: keyHeaders(apiKey) });
    expect(list.body.pagination.total).toBe(0);

    // The late create is refused, so the released credits can never be spent twice.
    const late = await createReserved(accountId, reserved);
    expect(late).toMatchObject({ ok: false, code: "RESERVATION_EXPIRED" });
    // The Idempotency-Key is free again: a retry of the request creates a fresh batch.
    const retried = await callJson("/api/batch/scrape", {
      method: "POST",
      headers: keyHeaders(apiKey, { "idempotency-key": "die-1" }),
      body: JSON.stringify({ urls: ["https://example.com/"] }),
    });
    expect(retried.status).toBe(202);
    expect(retried.body.batchId).not.toBe(reserved.batchId);
  });

  it("a batch created but whose confirmation never arrived is confirmed by the alarm, not released", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const account = accountStub(accountId);
    const reserved = await account.reserveBatch({
      output: "json",
      total: 1,
      amount: 2,
      wantedSlots: 1,
      maxActiveBatches: 100,
      idempotencyKey: null,
      requestHash: null,
    });
    if (!reserved.ok) throw new Error("not reserved");
    await failDeliveries(reserved.batchId, 100);
    const created = await createReserved(accountId, reserved);
    expect(created.ok).toBe(true);
    await expireHolds(account);
    await runDurableObjectAlarm(account);
    expect(await getCredits(apiKey)).toMatchObject({ balance: 98, reserved: 2 });
    const list = await callJson("/api/batch/scrape", { headers: keyHeaders(apiKey) });
    expect(list.body.jobs.map((j: { uuid: string }) => j.uuid)).toEqual([reserved.batchId]);
  });

  it.each([
    ["before the account applies it", false],
    ["after the account applied it (reply lost)", true],
  ])("a retry whose reservation call fails %s leaves no credits held", async (_name, applyFirst) => {
    const { apiKey } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 2);
    const stub = batchStub(batchId);
    const r = await stub.startItem(itemIds[0]!);
    if (r.action !== "run") throw new Error("not started");
    await stub.failItem(itemIds[0]!, r.attempt, { code: "HTTP_404", message: "gone" });
    await drainOutbox(batchId);
    await interceptReserveHold(batchId, (reserveHold) => async (input) => {
      if (applyFirst) expect(await reserveHold(input)).toMatchObject({ ok: true });
      throw new Error("injected reservation failure");
    });
    const res = await callJson(`/api/batch/scrape/${batchId}/retry`, { method: "POST", headers: keyHeaders(apiKey) });
    expect(res.status).toBe(503);
    expect(res.body.code).toBe("UNAVAILABLE");
    expect((await getBatch(apiKey, batchId)).body.failedCount).toBe(1);
    expect(await expectBalanced(apiKey, [batchId])).toMatchObject({ balance: 98, reserved: 2 });
  });
});
