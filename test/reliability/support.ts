/** Helpers for the race and fault tests: HTTP shortcuts and the strongest money check we have. */
import { expect } from "vitest";
import { accountStub, batchStub, callJson, drainOutbox, expectBalanced, keyHeaders } from "../helpers";
import { readLedger } from "./ledger";

export function cancelBatch(apiKey: string, batchId: string) {
  return callJson(`/api/batch/scrape/${batchId}`, { method: "DELETE", headers: keyHeaders(apiKey) });
}

export function retryBatch(apiKey: string, batchId: string) {
  return callJson(`/api/batch/scrape/${batchId}/retry`, { method: "POST", headers: keyHeaders(apiKey) });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export type Lease = { itemId: string; attempt: number };

/** Starts items one by one; every one must run. */
export async function startItems(batchId: string, itemIds: string[]): Promise<Lease[]> {
  const stub = batchStub(batchId);
  const leases: Lease[] = [];
  for (const id of itemIds) {
    const r = await stub.startItem(id);
    if (r.action !== "run") throw new Error(`expected ${id} to start, got ${r.reason}`);
    leases.push({ itemId: id, attempt: r.attempt });
  }
  return leases;
}

export async function completeAll(batchId: string, leases: Lease[]): Promise<void> {
  const stub = batchStub(batchId);
  for (const l of leases)
    expect(await stub.completeItem(l.itemId, l.attempt, { ok: true })).toEqual({ ok: true, outcome: "settled" });
}

export async function failAll(batchId: string, leases: Lease[]): Promise<void> {
  const stub = batchStub(batchId);
  for (const l of leases)
    expect(await stub.failItem(l.itemId, l.attempt, { code: "HTTP_404", message: "gone" })).toEqual({
      ok: true,
      outcome: "settled",
    });
}

/**
 * The books at a quiet moment, as strictly as we can read them: expectBalanced (granted =
 * balance + reserved + used; reserved = credits of unfinished items), every ledger key
 * once, and the ledger replayed from zero gives each row's balance and reserved figures
 * and ends at the account's balances.
 */
export async function expectBooksClosed(apiKey: string, accountId: string, batchIds: string[]) {
  for (const id of batchIds) await drainOutbox(id);
  const credits = await expectBalanced(apiKey, batchIds);
  const ledger = (await readLedger(accountId)).sort((a, b) => a.id - b.id);
  const keys = ledger.map((e) => e.idempotencyKey);
  expect(new Set(keys).size).toBe(keys.length);
  let balance = 0;
  let reserved = 0;
  let granted = 0;
  let used = 0;
  for (const e of ledger) {
    if (e.kind === "grant") {
      granted += e.amount;
      balance += e.amount;
    } else if (e.kind === "reserve") {
      balance -= e.amount;
      reserved += e.amount;
    } else if (e.kind === "consume") {
      reserved -= e.amount;
      used += e.amount;
    } else {
      reserved -= e.amount;
      balance += e.amount;
    }
    expect({ key: e.idempotencyKey, balance: e.balanceAfter, reserved: e.reservedAfter }).toEqual({
      key: e.idempotencyKey,
      balance,
      reserved,
    });
    expect(Math.min(balance, reserved)).toBeGreaterThanOrEqual(0);
  }
  expect({ granted, balance, reserved, used }).toEqual({
    granted: credits.granted,
    balance: credits.balance,
    reserved: credits.reserved,
    used: credits.used,
  });
  expect((await accountStub(accountId).getCredits()).granted).toBe(credits.granted);
  return { credits, ledger };
}
