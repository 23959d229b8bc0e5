import { describe, expect, it } from "vitest";
import {
  batchStub,
  callJson,
  expectBalanced,
  getBatch,
  getCredits,
  keyHeaders,
  newAccount,
  newBatch,
} from "../helpers";

function cancel(apiKey: string, batchId: string) {
  return callJson(`/api/batch/scrape/${batchId}`, { method: "DELETE", headers: keyHeaders(apiKey) });
}

async function startAll(batchId: string, itemIds: string[]) {
  const stub = batchStub(batchId);
  const leases = [];
  for (const id of itemIds) {
    const r = await stub.startItem(id);
    if (r.action !== "run") throw new Error(`expected to start ${id}, got ${r.reason}`);
    leases.push({ id, attempt: r.attempt });
  }
  return leases;
}

describe("DELETE /api/batch/scrape/:batchId", () => {
  it("cancels a pending batch: every item cancelled and refunded", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 5);
    const res = await cancel(apiKey, batchId);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: "cancelled", cancelledItems: 5, creditsRefunded: 10 });
    const { body } = await getBatch(apiKey, batchId);
    expect(body).toMatchObject({ status: "cancelled", cancelledCount: 5, pendingCount: 0, creditsRefunded: 10 });
    expect(body.cancelledAt).not.toBeNull();
    expect(body.finishedAt).not.toBeNull();
    expect(await expectBalanced(apiKey, [batchId])).toMatchObject({ balance: 100, reserved: 0, used: 0, refunded: 10 });
  });

  it("plays the seed's story: 10 items, 2 running, cancel refunds 8 x 2 credits; running ones finish and are charged", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 10, { maxConcurrency: 2 });
    const running = await startAll(batchId, itemIds.slice(0, 2));
    const res = await cancel(apiKey, batchId);
    expect(res.body).toEqual({ status: "cancelled", cancelledItems: 8, creditsRefunded: 16 });

    const during = (await getBatch(apiKey, batchId)).body;
    expect(during).toMatchObject({ status: "cancelled", runningCount: 2, cancelledCount: 8, finishedAt: null });
    expect(await getCredits(apiKey)).toMatchObject({ balance: 96, reserved: 4 });

    // Nothing starts after the cancel.
    const stub = batchStub(batchId);
    for (const id of itemIds.slice(2))
      expect(await stub.startItem(id)).toEqual({ action: "drop", reason: "BATCH_CANCELLED" });

    for (const lease of running)
      expect(await stub.completeItem(lease.id, lease.attempt, { ok: true })).toEqual({ ok: true, outcome: "settled" });
    const after = (await getBatch(apiKey, batchId)).body;
    expect(after).toMatchObject({
      status: "cancelled",
      runningCount: 0,
      completedCount: 2,
      creditsUsed: 4,
      creditsRefunded: 16,
    });
    expect(after.finishedAt).not.toBeNull();
    expect(await expectBalanced(apiKey, [batchId])).toMatchObject({ balance: 96, reserved: 0, used: 4, refunded: 16 });
  });

  it.each(["completed", "failed", "cancelled"] as const)(
    "answers 409 ALREADY_TERMINAL with the real state (%s)",
    async (state) => {
      const { apiKey } = await newAccount(100);
      const { batchId, itemIds } = await newBatch(apiKey, 1);
      const stub = batchStub(batchId);
      if (state === "cancelled") {
        await cancel(apiKey, batchId);
      } else {
        const [lease] = await startAll(batchId, itemIds);
        if (state === "completed") await stub.completeItem(lease!.id, lease!.attempt, {});
        else await stub.failItem(lease!.id, lease!.attempt, { code: "HTTP_404", message: "not found" });
      }
      const res = await cancel(apiKey, batchId);
      expect(res.status).toBe(409);
      expect(res.body).toEqual({
        status: "error",
        message: `Cannot cancel a batch that is already ${state}.`,
        code: "ALREADY_TERMINAL",
        requestId: res.res.headers.get("x-request-id"),
      });
    },
  );

  it("two cancels at once: exactly one 200, the other 409, refunded once", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 10);
    const results = await Promise.all([cancel(apiKey, batchId), cancel(apiKey, batchId)]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
    expect(await expectBalanced(apiKey, [batchId])).toMatchObject({ balance: 100, reserved: 0, refunded: 20 });
  });

  it("cancel racing 100 startItem calls still arriving: each start runs or is dropped by where it lands, nothing starts after, ledger balanced", async () => {
    // 4 chains send 25 starts each, one after another; the cancel goes out once 10 to 40
    // starts have answered, so starts keep arriving while it travels (route, auth, object).
    // A start lands before the cancel (runs) or after it (dropped); both must be seen.
    const seen = { ranAfterCancelSent: 0, dropped: 0 };
    for (let round = 0; round < 4; round++) {
      const { apiKey } = await newAccount(1000);
      const { batchId, itemIds } = await newBatch(apiKey, 100);
      const stub = batchStub(batchId);
      const cancelAt = 10 + round * 10;
      let answered = 0;
      let cancelSent = false;
      let cancelling: ReturnType<typeof cancel> | undefined;
      const chains = [0, 1, 2, 3].map(async (c) => {
        const results = [];
        for (const id of itemIds.slice(c * 25, c * 25 + 25)) {
          const sentAfterCancel = cancelSent;
          const r = await stub.startItem(id);
          results.push({ r, sentAfterCancel });
          if (++answered === cancelAt) {
            cancelSent = true;
            cancelling = cancel(apiKey, batchId);
          }
        }
        return results;
      });
      const results = (await Promise.all(chains)).flat();
      const cancelRes = await cancelling!;

      const ran = results.filter(({ r }) => r.action === "run");
      const dropped = results.filter(({ r }) => r.action === "drop");
      expect(ran.length + dropped.length).toBe(100);
      expect(ran.length).toBeGreaterThanOrEqual(cancelAt);
      for (const d of dropped) expect(d.r).toEqual({ action: "drop", reason: "BATCH_CANCELLED" });
      // Nothing starts after the cancel: in each chain, once one start is dropped every later one is.
      for (let c = 0; c < 4; c++) {
        const chain = results.slice(c * 25, c * 25 + 25).map(({ r }) => r.action);
        const firstDrop = chain.indexOf("drop");
        if (firstDrop >= 0) expect(chain.slice(firstDrop)).toEqual(Array(25 - firstDrop).fill("drop"));
      }
      expect(cancelRes.status).toBe(200);
      expect(cancelRes.body).toEqual({
        status: "cancelled",
        cancelledItems: dropped.length,
        creditsRefunded: dropped.length * 2,
      });
      seen.ranAfterCancelSent += ran.filter((x) => x.sentAfterCancel).length;
      seen.dropped += dropped.length;

      // Running items finish and are charged; then the books close exactly.
      for (const { r } of ran) if (r.action === "run") await stub.completeItem(r.itemId, r.attempt, { ok: true });
      const b = (await getBatch(apiKey, batchId)).body;
      expect(b).toMatchObject({
        completedCount: ran.length,
        cancelledCount: dropped.length,
        pendingCount: 0,
        runningCount: 0,
      });
      const credits = await expectBalanced(apiKey, [batchId]);
      expect(credits).toMatchObject({
        used: ran.length * 2,
        refunded: dropped.length * 2,
        reserved: 0,
        balance: 1000 - ran.length * 2,
      });
    }
    // Both orders happened: starts sent after the cancel that still landed first, and starts the cancel beat.
    expect(seen.ranAfterCancelSent).toBeGreaterThan(0);
    expect(seen.dropped).toBeGreaterThan(0);
  });

  it("cancel of another account's batch is 404 and changes nothing", async () => {
    const owner = await newAccount(100);
    const other = await newAccount(100);
    const { batchId } = await newBatch(owner.apiKey, 3);
    const res = await cancel(other.apiKey, batchId);
    expect(res.status).toBe(404);
    expect(res.body.code).toBe("NOT_FOUND");
    expect((await getBatch(owner.apiKey, batchId)).body.status).toBe("pending");
  });

  it("a cancel refund appears once in the ledger with the batch it belongs to", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 4);
    await cancel(apiKey, batchId);
    const { body } = await callJson("/api/credits/ledger", { headers: keyHeaders(apiKey) });
    const refunds = body.entries.filter((e: { kind: string }) => e.kind === "refund");
    expect(refunds).toHaveLength(1);
    expect(refunds[0]).toMatchObject({ amount: 8, batchId, idempotencyKey: `${batchId}:cancel` });
  });
});
