import { describe, expect, it } from "vitest";
import {
  batchStub,
  callJson,
  drainOutbox,
  expectBalanced,
  getBatch,
  getCredits,
  keyHeaders,
  newAccount,
  newBatch,
  runInBatch,
} from "../helpers";

function retry(apiKey: string, batchId: string) {
  return callJson(`/api/batch/scrape/${batchId}/retry`, { method: "POST", headers: keyHeaders(apiKey) });
}

/** Starts and fails the given items (final failures: credits refunded). */
async function failItems(batchId: string, itemIds: string[]) {
  const stub = batchStub(batchId);
  for (const id of itemIds) {
    const r = await stub.startItem(id);
    if (r.action !== "run") throw new Error("not started");
    await stub.failItem(id, r.attempt, { code: "HTTP_404", message: "gone" });
  }
  // Settlements reach the account through the outbox; wait until they have.
  await drainOutbox(batchId);
}

describe("POST /api/batch/scrape/:batchId/retry", () => {
  it("puts failed items back to pending with fresh credits reserved", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 3);
    await failItems(batchId, itemIds.slice(0, 2));
    expect(await getCredits(apiKey)).toMatchObject({ balance: 98, reserved: 2 });

    const res = await retry(apiKey, batchId);
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ status: "queued", retriedCount: 2 });
    const { body } = await getBatch(apiKey, batchId);
    expect(body).toMatchObject({
      status: "running",
      pendingCount: 3,
      failedCount: 0,
      creditsReserved: 10,
      creditsRefunded: 4,
    });
    expect(body.items[0]).toMatchObject({ status: "pending", attempts: 0, error: null });
    expect(await expectBalanced(apiKey, [batchId])).toMatchObject({ balance: 94, reserved: 6 });

    // A retried item that completes is charged under its new reservation.
    const stub = batchStub(batchId);
    const r = await stub.startItem(itemIds[0]!);
    if (r.action !== "run") throw new Error("not started");
    await stub.completeItem(itemIds[0]!, r.attempt, {});
    expect(await expectBalanced(apiKey, [batchId])).toMatchObject({ balance: 94, reserved: 4, used: 2 });
  });

  it("reopens a finished (failed) batch", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 1);
    await failItems(batchId, itemIds);
    expect((await getBatch(apiKey, batchId)).body.status).toBe("failed");
    expect((await retry(apiKey, batchId)).status).toBe(202);
    const { body } = await getBatch(apiKey, batchId);
    expect(body).toMatchObject({ status: "running", finishedAt: null, pendingCount: 1 });
  });

  it("400 NO_FAILED_ITEMS when nothing failed", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 2);
    const res = await retry(apiKey, batchId);
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ status: "error", code: "NO_FAILED_ITEMS" });
  });

  it("403 INSUFFICIENT_CREDITS when the balance cannot cover the retry; nothing changes", async () => {
    const { apiKey } = await newAccount(4);
    const { batchId, itemIds } = await newBatch(apiKey, 2);
    await failItems(batchId, itemIds.slice(0, 1));
    // Spend what came back on another batch, so the retry cannot be paid.
    await newBatch(apiKey, 1);
    const before = await getCredits(apiKey);
    const res = await retry(apiKey, batchId);
    expect(res.status).toBe(403);
    expect(res.body.code).toBe("INSUFFICIENT_CREDITS");
    expect(await getCredits(apiKey)).toEqual(before);
    expect((await getBatch(apiKey, batchId)).body.failedCount).toBe(1);
    // The refused attempt leaves no lock behind: paying later works.
    await callJson(`/admin/accounts/${await getAccountId(apiKey)}/credits`, {
      method: "POST",
      headers: { authorization: "Bearer test-admin-token", "content-type": "application/json" },
      body: JSON.stringify({ amount: 10 }),
    });
    expect((await retry(apiKey, batchId)).status).toBe(202);
  });

  it("409 BATCH_CANCELLED on a cancelled batch", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 3);
    await failItems(batchId, itemIds.slice(0, 1));
    await callJson(`/api/batch/scrape/${batchId}`, { method: "DELETE", headers: keyHeaders(apiKey) });
    const res = await retry(apiKey, batchId);
    expect(res.status).toBe(409);
    expect(res.body.code).toBe("BATCH_CANCELLED");
    await expectBalanced(apiKey, [batchId]);
  });

  it("a cancel that lands while the retry's credits are being reserved wins; the hold is released", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 3);
    await failItems(batchId, itemIds.slice(0, 2));
    const [retried, cancelled] = await Promise.all([
      retry(apiKey, batchId),
      callJson(`/api/batch/scrape/${batchId}`, { method: "DELETE", headers: keyHeaders(apiKey) }),
    ]);
    expect(cancelled.status).toBe(200);
    // Either the retry finished first (202, and cancel then refunded the re-queued items) or cancel won (409).
    expect([202, 409]).toContain(retried.status);
    const { body } = await getBatch(apiKey, batchId);
    expect(body.status).toBe("cancelled");
    expect(body.pendingCount).toBe(0);
    expect(await expectBalanced(apiKey, [batchId])).toMatchObject({ reserved: 0, balance: 100 });
  });

  it("two retries at once: one re-queues, the other finds nothing to do or a retry in progress", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 2);
    await failItems(batchId, itemIds);
    const results = await Promise.all([retry(apiKey, batchId), retry(apiKey, batchId)]);
    const statuses = results.map((r) => r.status).sort();
    expect(statuses[0]).toBe(202);
    expect([400, 409]).toContain(statuses[1]);
    expect(await expectBalanced(apiKey, [batchId])).toMatchObject({ reserved: 4, balance: 96 });
    const holds = await runInBatch(batchId, (_o, s) =>
      s.storage.sql.exec("SELECT state FROM holds WHERE key LIKE '%:retry:%'").toArray(),
    );
    expect(holds).toEqual([{ state: "applied" }]);
  });
});

async function getAccountId(apiKey: string): Promise<string> {
  const hex = apiKey.split("_")[1]!;
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
