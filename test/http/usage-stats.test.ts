/** GET /api/usage-stats: Spidra's usage shape, computed from the account's ledger through its daily usage. */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { AccountObject } from "../../src/account/account-object";
import { accountStub, batchStub, callJson, drainOutbox, keyHeaders, newAccount, newBatch } from "../helpers";
import { expectError, getJson, ledger } from "./support";

const today = () => new Date().toISOString().slice(0, 10);

/** A json batch of 4: one completed (120 ms), one failed (80 ms), one failed and charged, one cancelled. */
async function busyBatch(apiKey: string) {
  const { batchId, itemIds } = await newBatch(apiKey, 4, { maxConcurrency: 20 });
  const stub = batchStub(batchId);
  const start = async (id: string) => {
    const lease = await stub.startItem(id);
    if (lease.action !== "run") throw new Error(lease.reason);
    return lease.attempt;
  };
  await stub.completeItem(itemIds[0]!, await start(itemIds[0]!), { ok: 1 }, { durationMs: 120 });
  await stub.failItem(
    itemIds[1]!,
    await start(itemIds[1]!),
    { code: "HTTP_404", message: "Not Found" },
    {
      meta: { durationMs: 80, statusCode: 404 },
    },
  );
  await stub.failItem(itemIds[2]!, await start(itemIds[2]!), { code: "EXTRACTION_LIMIT", message: "too big" });
  expect(
    (await callJson(`/api/batch/scrape/${batchId}`, { method: "DELETE", headers: keyHeaders(apiKey) })).body,
  ).toEqual({ status: "cancelled", cancelledItems: 1, creditsRefunded: 2 });
  await drainOutbox(batchId);
  return batchId;
}

describe("GET /api/usage-stats", () => {
  it("7d: seven days, today last, with today's reserved, charged and refunded credits and items by state", async () => {
    const { apiKey } = await newAccount(100);
    await busyBatch(apiKey);
    const r = await getJson("/api/usage-stats?range=7d", apiKey);
    expect(r.status).toBe(200);
    expect(r.body.status).toBe("success");
    expect(r.body.data).toHaveLength(7);
    const last = r.body.data[6];
    expect(last).toEqual({
      label: expect.stringMatching(/^[A-Z][a-z]{2} \d{1,2}$/),
      date: today(),
      tokens: 0,
      requests: 3,
      crawls: 0,
      captchas: 0,
      latency: 100,
      credits: 4,
      creditsReserved: 8,
      creditsCharged: 4,
      creditsRefunded: 4,
      items: { completed: 1, failed: 2, cancelled: 1 },
    });
    for (const row of r.body.data.slice(0, 6))
      expect(row).toMatchObject({ credits: 0, creditsReserved: 0, requests: 0 });
  });

  it("agrees with the ledger: reserved, charged and refunded are the sums of its rows", async () => {
    const { apiKey } = await newAccount(100);
    await busyBatch(apiKey);
    await busyBatch(apiKey);
    const { body } = await ledger(apiKey, "?limit=100");
    const sum = (kind: string) =>
      body.entries
        .filter((e: { kind: string }) => e.kind === kind)
        .reduce((n: number, e: { amount: number }) => n + e.amount, 0);
    const row = (await getJson("/api/usage-stats?range=30d", apiKey)).body.data.at(-1);
    expect({ reserved: row.creditsReserved, charged: row.creditsCharged, refunded: row.creditsRefunded }).toEqual({
      reserved: sum("reserve"),
      charged: sum("consume"),
      refunded: sum("refund"),
    });
  });

  it("30d gives 30 days and weekly 7 weeks, Monday to Sunday", async () => {
    const { apiKey } = await newAccount(100);
    await busyBatch(apiKey);
    const month = (await getJson("/api/usage-stats?range=30d", apiKey)).body.data;
    expect(month).toHaveLength(30);
    expect(month[29].date).toBe(today());
    const weeks = (await getJson("/api/usage-stats?range=weekly", apiKey)).body.data;
    expect(weeks).toHaveLength(7);
    expect(weeks[6]).toMatchObject({ creditsReserved: 8, items: { completed: 1, failed: 2, cancelled: 1 } });
    expect(weeks[6].date).toMatch(/^[A-Z][a-z]{2} \d{1,2} – [A-Z][a-z]{2} \d{1,2}$/);
  });

  it.each(["", "?range=", "?range=1y", "?range=7D", "?range=7d&range=30d"])(
    "refuses %s with 400 VALIDATION_ERROR naming range",
    async (query) => {
      const { apiKey } = await newAccount(0);
      const r = await getJson(`/api/usage-stats${query}`, apiKey);
      expectError(r, 400, "VALIDATION_ERROR");
      expect(r.body.message).toMatch(/^range: must be one of 7d, 30d, weekly/);
    },
  );

  it("needs a key (401) and keeps accounts apart", async () => {
    expectError(await getJson("/api/usage-stats?range=7d", ""), 401, "MISSING_API_KEY");
    const busy = await newAccount(100);
    await busyBatch(busy.apiKey);
    const quiet = await newAccount(100);
    const rows = (await getJson("/api/usage-stats?range=7d", quiet.apiKey)).body.data;
    expect(
      rows.every((r: { creditsReserved: number; requests: number }) => r.creditsReserved === 0 && r.requests === 0),
    ).toBe(true);
  });

  it("an account older than the table gets it filled from its ledger (the migration's backfill)", async () => {
    const { apiKey, accountId } = await newAccount(100);
    await busyBatch(apiKey);
    const before = (await getJson("/api/usage-stats?range=7d", apiKey)).body.data[6];
    // Drop the table and replay the migration, as an account made before it would run it.
    await runInDurableObject(accountStub(accountId), async (_o: AccountObject, state) => {
      const { USAGE_MIGRATION } = await import("../../src/account/usage");
      state.storage.sql.exec("DROP TABLE usage_daily");
      state.storage.sql.exec(USAGE_MIGRATION);
    });
    const after = (await getJson("/api/usage-stats?range=7d", apiKey)).body.data[6];
    // Fetch times were never in the ledger: the backfill has none.
    expect(after).toEqual({ ...before, latency: 0 });
  });
});
