import { describe, expect, it } from "vitest";
import { LIMITS } from "../../src/domain/limits";
import { batchStub, expectBalanced, getBatch, newAccount, newBatch, runInBatch } from "../helpers";

async function started(batchId: string, itemId: string) {
  const r = await batchStub(batchId).startItem(itemId);
  if (r.action !== "run") throw new Error(`not started: ${r.reason}`);
  return r;
}

describe("startItem", () => {
  it("grants a lease with attempt 1 and the item's work", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 2, { output: "markdown", selectors: { title: "h1" } });
    const r = await started(batchId, itemIds[0]!);
    expect(r).toMatchObject({
      action: "run",
      batchId,
      itemId: itemIds[0],
      attempt: 1,
      url: "https://example.com/page/0",
      output: "markdown",
      selectors: { title: "h1" },
    });
    expect(r.leaseExpiresAt).toBeGreaterThan(Date.now());
    const { body } = await getBatch(apiKey, batchId);
    expect(body).toMatchObject({ status: "running", pendingCount: 1, runningCount: 1 });
    expect(body.items[0]).toMatchObject({ status: "running", attempts: 1 });
  });

  it("tells the caller to drop a running item (a duplicate queue delivery runs once)", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 1);
    await started(batchId, itemIds[0]!);
    expect(await batchStub(batchId).startItem(itemIds[0]!)).toEqual({ action: "drop", reason: "ITEM_NOT_PENDING" });
  });

  it("drops an unknown item, and an item of a batch that does not exist", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 1);
    expect(await batchStub(batchId).startItem(crypto.randomUUID())).toEqual({
      action: "drop",
      reason: "ITEM_NOT_FOUND",
    });
    expect(await batchStub(crypto.randomUUID()).startItem(crypto.randomUUID())).toEqual({
      action: "drop",
      reason: "ITEM_NOT_FOUND",
    });
  });
});

describe("completeItem / failItem", () => {
  it("completing consumes the item's credits; a redelivered completion is a duplicate, not a second charge", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 2);
    const lease = await started(batchId, itemIds[0]!);
    const stub = batchStub(batchId);
    expect(await stub.completeItem(itemIds[0]!, lease.attempt, { title: "A" })).toEqual({
      ok: true,
      outcome: "settled",
    });
    expect(await stub.completeItem(itemIds[0]!, lease.attempt, { title: "A" })).toEqual({
      ok: true,
      outcome: "duplicate",
    });
    const { body } = await getBatch(apiKey, batchId);
    expect(body.items[0]).toMatchObject({ status: "completed", result: { title: "A" }, creditsUsed: 2, error: null });
    expect(body).toMatchObject({ completedCount: 1, creditsUsed: 2, status: "running" });
    expect(await expectBalanced(apiKey, [batchId])).toMatchObject({ used: 2, reserved: 2, balance: 96 });
  });

  it("failing refunds the item's credits, charged 0", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 1);
    const lease = await started(batchId, itemIds[0]!);
    await batchStub(batchId).failItem(itemIds[0]!, lease.attempt, { code: "HTTP_404", message: "Not Found" });
    const { body } = await getBatch(apiKey, batchId);
    expect(body).toMatchObject({ status: "failed", failedCount: 1, creditsRefunded: 2, creditsUsed: 0 });
    expect(body.items[0]).toMatchObject({
      status: "failed",
      creditsUsed: 0,
      // Spidra's shape: the message as a string, the code beside it.
      error: "Not Found",
      errorCode: "HTTP_404",
    });
    expect(body.finishedAt).not.toBeNull();
    expect(await expectBalanced(apiKey, [batchId])).toMatchObject({ balance: 100, reserved: 0, used: 0, refunded: 2 });
  });

  it("a batch with one completed and one failed item ends completed", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 2);
    const a = await started(batchId, itemIds[0]!);
    const b = await started(batchId, itemIds[1]!);
    await batchStub(batchId).completeItem(itemIds[0]!, a.attempt, {});
    await batchStub(batchId).failItem(itemIds[1]!, b.attempt, { code: "X", message: "x" });
    expect((await getBatch(apiKey, batchId)).body.status).toBe("completed");
  });

  it("ignores a settlement from a stale attempt (fencing token)", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 1);
    const stub = batchStub(batchId);
    const first = await started(batchId, itemIds[0]!);
    expect(
      await stub.failItem(itemIds[0]!, first.attempt, { code: "TIMEOUT", message: "t" }, { retryable: true }),
    ).toEqual({ ok: true, outcome: "requeued" });
    const second = await started(batchId, itemIds[0]!);
    expect(second.attempt).toBe(2);
    expect(await stub.completeItem(itemIds[0]!, first.attempt, { stale: true })).toEqual({
      ok: true,
      outcome: "ignored",
      reason: "STALE_ATTEMPT",
    });
    expect(await stub.completeItem(itemIds[0]!, second.attempt, { fresh: true })).toEqual({
      ok: true,
      outcome: "settled",
    });
    const { body } = await getBatch(apiKey, batchId);
    expect(body.items[0]).toMatchObject({ status: "completed", result: { fresh: true }, attempts: 2 });
    await expectBalanced(apiKey, [batchId]);
  });

  it("a retryable failure on the last attempt is final", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 1);
    const stub = batchStub(batchId);
    for (let attempt = 1; attempt <= LIMITS.maxAttempts; attempt++) {
      const lease = await started(batchId, itemIds[0]!);
      expect(lease.attempt).toBe(attempt);
      const outcome = await stub.failItem(
        itemIds[0]!,
        attempt,
        { code: "HTTP_503", message: "busy" },
        { retryable: true },
      );
      expect(outcome.outcome).toBe(attempt < LIMITS.maxAttempts ? "requeued" : "settled");
    }
    expect((await getBatch(apiKey, batchId)).body).toMatchObject({ status: "failed", failedCount: 1 });
    await expectBalanced(apiKey, [batchId]);
  });

  it("a retryable failure schedules the next attempt: backoff from RETRY_BASE_DELAY_MS doubling each attempt, or Retry-After when longer", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 2);
    // Starts and fails the item inside its object and reads the item's next-attempt time.
    // The delay it was given lies in [notBefore - after, notBefore - before] (one instant
    // when the clock stands still across the call, as in workerd without I/O).
    const failOnce = (id: string, retryAfterSeconds?: number) =>
      runInBatch(batchId, async (o, state) => {
        const lease = await o.startItem(id);
        if (lease.action !== "run") throw new Error(`not started: ${lease.reason}`);
        const before = Date.now();
        const outcome = await o.failItem(
          id,
          lease.attempt,
          { code: "HTTP_503", message: "busy" },
          { retryable: true, retryAfterSeconds },
        );
        const after = Date.now();
        expect(outcome).toEqual({ ok: true, outcome: "requeued" });
        const { not_before } = state.storage.sql
          .exec<{ not_before: number | null }>("SELECT not_before FROM items WHERE id = ?", id)
          .one();
        expect(not_before).not.toBeNull();
        return { atLeast: not_before! - after, atMost: not_before! - before };
      });
    const expectDelayWithin = (d: { atLeast: number; atMost: number }, low: number, high: number) => {
      expect(d.atMost).toBeGreaterThanOrEqual(low);
      expect(d.atLeast).toBeLessThanOrEqual(high);
    };
    // RETRY_BASE_DELAY_MS is 2000 (wrangler.toml); jitter keeps a delay within [0.75, 1.25] x 2000 x 2^(attempt - 1).
    expectDelayWithin(await failOnce(itemIds[0]!), 1500, 2500);
    expectDelayWithin(await failOnce(itemIds[0]!), 3000, 5000);
    // Retry-After: 30 beats the first attempt's 2 s backoff.
    expectDelayWithin(await failOnce(itemIds[1]!, 30), 30_000, 30_000);
  });

  it("settling an item that never started is ignored", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 1);
    expect(await batchStub(batchId).completeItem(itemIds[0]!, 1, {})).toEqual({
      ok: true,
      outcome: "ignored",
      reason: "ITEM_NOT_RUNNING",
    });
  });
});

describe("leases", () => {
  it("the alarm takes back an expired lease: the item is pending again, then fails after the last attempt", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 1);
    const expire = () =>
      runInBatch(batchId, async (o, state) => {
        state.storage.sql.exec("UPDATE items SET lease_expires_at = ? WHERE status = 'running'", Date.now() - 1);
        await o.alarm();
      });
    for (let attempt = 1; attempt < LIMITS.maxAttempts; attempt++) {
      await started(batchId, itemIds[0]!);
      await expire();
      expect((await getBatch(apiKey, batchId)).body.items[0]).toMatchObject({ status: "pending", attempts: attempt });
    }
    const last = await started(batchId, itemIds[0]!);
    await expire();
    const { body } = await getBatch(apiKey, batchId);
    expect(body.items[0]).toMatchObject({ status: "failed", errorCode: "LEASE_EXPIRED" });
    // The consumer that lost its lease cannot settle it any more.
    expect(await batchStub(batchId).completeItem(itemIds[0]!, last.attempt, {})).toEqual({
      ok: true,
      outcome: "ignored",
      reason: "ITEM_NOT_RUNNING",
    });
    await expectBalanced(apiKey, [batchId]);
  });
});
