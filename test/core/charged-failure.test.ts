/**
 * A failure at an extraction limit (EXTRACTION_LIMIT) is charged through the batch
 * object's settle path: the item reads `failed` with its code and creditsUsed = its price,
 * the account's ledger has a consume for it, it is never requeued by itself, and a user's
 * retry reserves and charges it again, so retrying a hostile page costs every round.
 */
import { describe, expect, it } from "vitest";
import {
  batchStub,
  callJson,
  drainOutbox,
  expectBalanced,
  getBatch,
  keyHeaders,
  newAccount,
  newBatch,
} from "../helpers";

const LIMIT = {
  code: "EXTRACTION_LIMIT",
  message: "Extraction stopped: the page has more than 100000 elements (EXTRACT_MAX_ELEMENTS = 100000).",
};

/** Starts the item and reports it over the limit (even claiming it retryable: it must not be put back). */
async function failAtLimit(batchId: string, itemId: string): Promise<void> {
  const stub = batchStub(batchId);
  const started = await stub.startItem(itemId);
  if (started.action !== "run") throw new Error(`not started: ${started.reason}`);
  expect(await stub.failItem(itemId, started.attempt, LIMIT, { retryable: true })).toEqual({
    ok: true,
    outcome: "settled",
  });
  await drainOutbox(batchId);
}

async function ledger(apiKey: string) {
  const res = await callJson("/api/credits/ledger?limit=100", { headers: keyHeaders(apiKey) });
  expect(res.status).toBe(200);
  return res.body.entries as {
    kind: string;
    amount: number;
    itemId: string | null;
    note: string | null;
    idempotencyKey: string;
  }[];
}

function retry(apiKey: string, batchId: string) {
  return callJson(`/api/batch/scrape/${batchId}/retry`, { method: "POST", headers: keyHeaders(apiKey) });
}

describe("a failure at an extraction limit is charged", () => {
  it("reads failed with its code and creditsUsed = price; the account consumes, nothing is refunded", async () => {
    const { apiKey } = await newAccount(10);
    const { batchId, itemIds } = await newBatch(apiKey, 2); // json: 2 credits each
    await failAtLimit(batchId, itemIds[0]!);

    const { body } = await getBatch(apiKey, batchId);
    expect(body).toMatchObject({ failedCount: 1, pendingCount: 1, creditsUsed: 2, creditsRefunded: 0 });
    expect(body.items[0]).toMatchObject({
      status: "failed",
      attempts: 1,
      creditsUsed: 2,
      error: LIMIT.message,
      errorCode: LIMIT.code,
    });
    expect(await expectBalanced(apiKey, [batchId])).toMatchObject({ balance: 6, reserved: 2, used: 2, refunded: 0 });

    const rows = (await ledger(apiKey)).filter((e) => e.itemId === itemIds[0]);
    expect(rows).toEqual([
      expect.objectContaining({
        kind: "consume",
        amount: 2,
        note: "item failed, charged",
        idempotencyKey: `${batchId}:${itemIds[0]}:r1:consume`,
      }),
    ]);
  });

  it("a retry reserves and charges again each round, and stops when the credits run out (no free loop)", async () => {
    const { apiKey } = await newAccount(6);
    const { batchId, itemIds } = await newBatch(apiKey, 1); // 2 credits reserved, 4 left
    const itemId = itemIds[0]!;

    await failAtLimit(batchId, itemId);
    expect(await expectBalanced(apiKey, [batchId])).toMatchObject({ balance: 4, reserved: 0, used: 2 });

    for (const [round, balance] of [
      [2, 2],
      [3, 0],
    ] as const) {
      expect((await retry(apiKey, batchId)).status).toBe(202);
      await failAtLimit(batchId, itemId);
      expect(await expectBalanced(apiKey, [batchId])).toMatchObject({
        balance,
        reserved: 0,
        used: 2 * round,
        refunded: 0,
      });
      const { body } = await getBatch(apiKey, batchId);
      expect(body).toMatchObject({
        status: "failed",
        creditsReserved: 2 * round,
        creditsUsed: 2 * round,
        creditsRefunded: 0,
      });
      expect(body.items[0]).toMatchObject({ status: "failed", creditsUsed: 2, errorCode: "EXTRACTION_LIMIT" });
    }

    // The balance is spent: the next retry is refused before anything runs.
    const refused = await retry(apiKey, batchId);
    expect({ status: refused.status, code: refused.body.code }).toEqual({ status: 403, code: "INSUFFICIENT_CREDITS" });
    const consumes = (await ledger(apiKey)).filter((e) => e.itemId === itemId).map((e) => [e.kind, e.idempotencyKey]);
    expect(consumes.sort()).toEqual([1, 2, 3].map((r) => ["consume", `${batchId}:${itemId}:r${r}:consume`]));
  });
});
