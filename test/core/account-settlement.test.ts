/**
 * AccountObject.applyBatchEvents settles a call's consumes and refunds as a group: balances
 * and the batch's reserved credits are read once and written once per call. These tests pin
 * what must not change: the ledger rows (their running balance_after / reserved_after, in
 * event order), duplicates, the guards that refuse a whole call, and how other event kinds
 * interleave with the money events.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { AccountObject } from "../../src/account/account-object";
import { type AccountEvent, holdKeys } from "../../src/domain/account-events";
import { accountStub, newAccount, watchSql } from "../helpers";

type Stub = ReturnType<typeof accountStub>;
type LedgerRow = {
  seq: number;
  idem_key: string;
  kind: string;
  amount: number;
  batch_id: string | null;
  item_id: string | null;
  note: string | null;
  balance_after: number;
  reserved_after: number;
};
type IndexRow = {
  batch_id: string;
  status: string;
  visible: number;
  completed: number;
  reserved: number;
  version: number;
};

/** An account with `credits`, and one batch per entry of `holds` (each holding that many credits). */
async function accountWithBatches(credits: number, holds: number[]) {
  const { accountId } = await newAccount(credits);
  const account = accountStub(accountId);
  const batchIds: string[] = [];
  for (const amount of holds) {
    const r = await account.reserveBatch({
      output: "json",
      total: amount,
      amount,
      wantedSlots: 1,
      maxActiveBatches: 1000,
      idempotencyKey: null,
      requestHash: null,
    });
    if (!r.ok) throw new Error(r.message);
    batchIds.push(r.batchId);
  }
  return { accountId, account, batchIds, ids: [accountId, ...batchIds] };
}

/** Everything the account keeps that a settlement may touch (ids replaced by their position: id0 is the account's). */
async function books(account: Stub, ids: string[]) {
  return runInDurableObject(account, (_o: AccountObject, state) => {
    const sql = state.storage.sql;
    // Ids (alone or inside keys) become id0, id1, ... so two accounts compare equal.
    const name = <T>(v: T): T =>
      typeof v === "string" ? (ids.reduce((s, id, i) => s.replaceAll(id, `id${i}`), v) as T) : v;
    return {
      balances: sql.exec("SELECT granted, balance, reserved, used, refunded FROM balances").toArray(),
      ledger: sql
        .exec<LedgerRow>(
          "SELECT seq, idem_key, kind, amount, batch_id, item_id, note, balance_after, reserved_after FROM ledger ORDER BY seq",
        )
        .toArray()
        .map((r) => ({ ...r, idem_key: name(r.idem_key), batch_id: name(r.batch_id) })),
      batches: sql
        .exec<IndexRow>(
          "SELECT batch_id, status, visible, completed, reserved, version FROM batches ORDER BY created_at, rowid",
        )
        .toArray()
        .map((r) => ({ ...r, batch_id: name(r.batch_id) })),
      holds: sql
        .exec("SELECT key, state, amount FROM holds ORDER BY created_at, rowid")
        .toArray()
        .map((r) => ({ ...r, key: name(r.key) })),
      slots: sql
        .exec("SELECT batch_id, granted, wanted, version FROM slots ORDER BY rowid")
        .toArray()
        .map((r) => ({ ...r, batch_id: name(r.batch_id) })),
    };
  });
}

const status = (version: number, completed: number): AccountEvent => ({
  kind: "status",
  version,
  snapshot: { status: "running", completed, failed: 0, cancelled: 0, finishedAt: null },
});

/** Consumes, refunds (one with no item, one of 0 credits), a duplicate key, status and slots events. */
const MIXED: AccountEvent[] = [
  { kind: "consume", key: "k1", amount: 2, itemId: "a" },
  { kind: "refund", key: "k2", amount: 3, itemId: "b", note: "item cancelled" },
  { kind: "consume", key: "k1", amount: 2, itemId: "a" },
  status(2, 1),
  { kind: "refund", key: "k0", amount: 0, itemId: "z", note: "nothing to give back" },
  { kind: "consume", key: "k3", amount: 5, itemId: "c" },
  { kind: "slots", version: 2, wanted: 3 },
  { kind: "consume", key: "k5", amount: 4, itemId: "d" },
  { kind: "refund", key: "k6", amount: 6, note: "batch cancelled" },
];

describe("applyBatchEvents settles a call's movements as a group", () => {
  it("a mixed call leaves the exact running figures on every ledger row", async () => {
    // 100 credits; id1 holds 20, id2 holds 10 (so the account's reserved is not the batch's).
    const { account, batchIds, ids } = await accountWithBatches(100, [20, 10]);
    expect(await account.applyBatchEvents(batchIds[0]!, MIXED)).toEqual({ ok: true, applied: 8 });
    const got = await books(account, ids);
    expect(got.balances).toEqual([{ granted: 100, balance: 79, reserved: 10, used: 11, refunded: 9 }]);
    expect(
      got.ledger.map((r) => [
        r.seq,
        r.idem_key,
        r.kind,
        r.amount,
        r.batch_id,
        r.item_id,
        r.balance_after,
        r.reserved_after,
      ]),
    ).toEqual([
      [1, expect.any(String), "grant", 100, null, null, 100, 0],
      [2, `id1:create`, "reserve", 20, "id1", null, 80, 20],
      [3, `id2:create`, "reserve", 10, "id2", null, 70, 30],
      [4, "k1", "consume", 2, "id1", "a", 70, 28],
      [5, "k2", "refund", 3, "id1", "b", 73, 25],
      [6, "k3", "consume", 5, "id1", "c", 73, 20],
      [7, "k5", "consume", 4, "id1", "d", 73, 16],
      [8, "k6", "refund", 6, "id1", null, 79, 10],
    ]);
    expect(got.ledger.find((r) => r.idem_key === "k6")?.note).toBe("batch cancelled");
    expect(got.batches.map((b) => [b.batch_id, b.reserved, b.status, b.completed, b.version])).toEqual([
      ["id1", 0, "running", 1, 2],
      ["id2", 10, "pending", 0, 0],
    ]);
  });

  it("one call of many events gives the same books as one call per event", async () => {
    const grouped = await accountWithBatches(100, [20, 10]);
    const single = await accountWithBatches(100, [20, 10]);
    const appliedGrouped = await grouped.account.applyBatchEvents(grouped.batchIds[0]!, MIXED);
    let appliedSingle = 0;
    for (const event of MIXED) {
      const r = await single.account.applyBatchEvents(single.batchIds[0]!, [event]);
      if (!r.ok) throw new Error(r.message);
      appliedSingle += r.applied;
    }
    expect(appliedGrouped).toEqual({ ok: true, applied: appliedSingle });
    expect(await books(grouped.account, grouped.ids)).toEqual(await books(single.account, single.ids));
  });

  it("a replay of the same call applies nothing, even once the batch holds no more credits", async () => {
    const { account, batchIds, ids } = await accountWithBatches(100, [20, 10]);
    expect(await account.applyBatchEvents(batchIds[0]!, MIXED)).toEqual({ ok: true, applied: 8 });
    const before = await books(account, ids);
    // id1 now holds 0: the replayed consumes would over-release if they were not duplicates.
    // (As before: the 0-credit refund never has a ledger row and a slots event always counts,
    // so those two count as applied each time; they change nothing.)
    expect(
      await account.applyBatchEvents(
        batchIds[0]!,
        MIXED.filter((e) => e.kind === "consume" || e.kind === "refund"),
      ),
    ).toEqual({ ok: true, applied: 1 });
    expect(await account.applyBatchEvents(batchIds[0]!, MIXED)).toEqual({ ok: true, applied: 2 });
    expect(await books(account, ids)).toEqual(before);
  });

  it("a duplicate inside one call is skipped; a duplicate that would also over-release is skipped too", async () => {
    const { account, batchIds, ids } = await accountWithBatches(100, [4]);
    const events: AccountEvent[] = [
      { kind: "consume", key: "x", amount: 4, itemId: "a" },
      { kind: "consume", key: "x", amount: 4, itemId: "a" }, // the batch holds 0 now
      { kind: "refund", key: "x", amount: 1, note: "same key, other kind" },
    ];
    expect(await account.applyBatchEvents(batchIds[0]!, events)).toEqual({ ok: true, applied: 1 });
    const got = await books(account, ids);
    expect(got.balances).toEqual([{ granted: 100, balance: 96, reserved: 0, used: 4, refunded: 0 }]);
    expect(got.ledger.filter((r) => r.idem_key === "x")).toHaveLength(1);
  });

  it("a release larger than the batch holds, mid-call, refuses the whole call", async () => {
    const { account, batchIds, ids } = await accountWithBatches(100, [20, 10]);
    const before = await books(account, ids);
    const r = await account.applyBatchEvents(batchIds[0]!, [
      { kind: "consume", key: "k1", amount: 2, itemId: "a" },
      status(2, 1),
      { kind: "refund", key: "k2", amount: 3, note: "cancelled" },
      { kind: "consume", key: "k3", amount: 16, itemId: "c" }, // 15 left
      { kind: "consume", key: "k4", amount: 1, itemId: "d" },
    ]);
    expect(r).toEqual({
      ok: false,
      code: "INTERNAL_ERROR",
      message: `batch ${batchIds[0]} holds 15 credits, cannot release 16`,
    });
    expect(await books(account, ids)).toEqual(before);
    // The same call without the bad event goes through afterwards.
    expect(
      await account.applyBatchEvents(batchIds[0]!, [{ kind: "consume", key: "k1", amount: 2, itemId: "a" }]),
    ).toEqual({ ok: true, applied: 1 });
  });

  it("a release larger than the account holds refuses the whole call", async () => {
    const { account, batchIds, ids } = await accountWithBatches(100, [20, 10]);
    // Books already wrong (the batch claims more than the account holds): the guard still holds.
    await runInDurableObject(account, (_o: AccountObject, s) =>
      s.storage.sql.exec("UPDATE batches SET reserved = 1000 WHERE batch_id = ?", batchIds[0]!),
    );
    const before = await books(account, ids);
    const r = await account.applyBatchEvents(batchIds[0]!, [
      { kind: "consume", key: "k1", amount: 25, itemId: "a" },
      { kind: "consume", key: "k2", amount: 6, itemId: "b" }, // the account holds 5
    ]);
    expect(r).toEqual({
      ok: false,
      code: "INTERNAL_ERROR",
      message: "consume 6 for k2 refused: cannot consume 6: only 5 reserved",
    });
    expect(await books(account, ids)).toEqual(before);
  });

  it("a consume of 0 credits refuses the whole call, as before", async () => {
    const { account, batchIds, ids } = await accountWithBatches(100, [20]);
    const before = await books(account, ids);
    const r = await account.applyBatchEvents(batchIds[0]!, [
      { kind: "consume", key: "k1", amount: 2, itemId: "a" },
      { kind: "consume", key: "k2", amount: 0, itemId: "b" },
    ]);
    expect(r).toMatchObject({
      ok: false,
      code: "INTERNAL_ERROR",
      message: expect.stringMatching(/^consume 0 for k2 refused: amount must be a positive integer/),
    });
    expect(await books(account, ids)).toEqual(before);
  });

  it("a void between settlements refunds its hold with the running figures", async () => {
    const { account, batchIds, ids } = await accountWithBatches(100, [20]);
    const batchId = batchIds[0]!;
    const retryKey = holdKeys.retry(batchId, 1);
    expect(await account.reserveHold({ key: retryKey, batchId, amount: 6 })).toEqual({ ok: true, replay: false });
    const events: AccountEvent[] = [
      { kind: "confirm", key: holdKeys.create(batchId) },
      { kind: "consume", key: "k1", amount: 2, itemId: "a" },
      { kind: "void", key: retryKey },
      { kind: "consume", key: "k2", amount: 18, itemId: "b" },
      { kind: "void", key: retryKey },
    ];
    expect(await account.applyBatchEvents(batchId, events)).toEqual({ ok: true, applied: 4 });
    const got = await books(account, ids);
    expect(got.balances).toEqual([{ granted: 100, balance: 80, reserved: 0, used: 20, refunded: 6 }]);
    expect(got.ledger.slice(3).map((r) => [r.idem_key, r.kind, r.amount, r.balance_after, r.reserved_after])).toEqual([
      ["k1", "consume", 2, 74, 24],
      ["id1:retry:1:void", "refund", 6, 80, 18],
      ["k2", "consume", 18, 80, 0],
    ]);
    expect(got.batches[0]).toMatchObject({ reserved: 0, visible: 1 });
    expect(got.holds).toEqual([
      { key: "id1:create", state: "confirmed", amount: 20 },
      { key: "id1:retry:1", state: "void", amount: 6 },
    ]);
  });

  it("a void that comes before its reserve leaves a tombstone: nothing moves, the batch stays, the late reserve is refused", async () => {
    const { account, batchIds, ids } = await accountWithBatches(100, [20]);
    const batchId = batchIds[0]!;
    const retryKey = holdKeys.retry(batchId, 1);
    const before = await books(account, ids);
    expect(await account.applyBatchEvents(batchId, [{ kind: "void", key: retryKey }])).toEqual({
      ok: true,
      applied: 1,
    });
    const got = await books(account, ids);
    expect(got.holds).toEqual([...before.holds, { key: "id1:retry:1", state: "void", amount: 0 }]);
    expect({ ...got, holds: before.holds }).toEqual(before);
    expect(await account.reserveHold({ key: retryKey, batchId, amount: 6 })).toMatchObject({
      ok: false,
      code: "RESERVATION_EXPIRED",
    });
    expect(await books(account, ids)).toEqual(got);
  });

  it("a void of the creation hold removes the batch: a later settlement in the same call refuses the call", async () => {
    const { account, batchIds, ids } = await accountWithBatches(100, [20]);
    const batchId = batchIds[0]!;
    // A retry hold too, so the batch's row still says 6 credits when the creation hold goes.
    expect(await account.reserveHold({ key: holdKeys.retry(batchId, 1), batchId, amount: 6 })).toEqual({
      ok: true,
      replay: false,
    });
    const before = await books(account, ids);
    const voidCreate: AccountEvent = { kind: "void", key: holdKeys.create(batchId) };
    const r = await account.applyBatchEvents(batchId, [
      voidCreate,
      { kind: "consume", key: "k1", amount: 2, itemId: "a" },
    ]);
    expect(r).toEqual({
      ok: false,
      code: "INTERNAL_ERROR",
      message: `batch ${batchId} holds 0 credits, cannot release 2`,
    });
    expect(await books(account, ids)).toEqual(before);
    // Alone it goes through: the creation hold's credits come back and the batch's row is gone.
    expect(await account.applyBatchEvents(batchId, [voidCreate])).toEqual({ ok: true, applied: 1 });
    const got = await books(account, ids);
    expect(got.balances).toEqual([{ granted: 100, balance: 94, reserved: 6, used: 0, refunded: 20 }]);
    expect(got.batches).toEqual([]);
    expect(got.ledger.at(-1)).toMatchObject({
      idem_key: "id1:create:void",
      kind: "refund",
      amount: 20,
      balance_after: 94,
      reserved_after: 6,
    });
  });

  it("forget after the last settlements of the same call sees the batch's credits released", async () => {
    const { account, batchIds, ids } = await accountWithBatches(100, [4]);
    const batchId = batchIds[0]!;
    const settle: AccountEvent[] = [
      { kind: "confirm", key: holdKeys.create(batchId) },
      { kind: "consume", key: "k1", amount: 2, itemId: "a" },
      { kind: "refund", key: "k2", amount: 2, itemId: "b", note: "cancelled" },
    ];
    // Still holding 2 at the forget: refused whole.
    const before = await books(account, ids);
    expect(await account.applyBatchEvents(batchId, [...settle.slice(0, 2), { kind: "forget" }])).toEqual({
      ok: false,
      code: "INTERNAL_ERROR",
      message: `forget of batch ${batchId}, which still holds 2 credits`,
    });
    expect(await books(account, ids)).toEqual(before);
    expect(await account.applyBatchEvents(batchId, [...settle, { kind: "forget" }])).toEqual({ ok: true, applied: 4 });
    const got = await books(account, ids);
    expect(got.batches).toEqual([
      { batch_id: "id1", status: "expired", visible: 0, completed: 0, reserved: 0, version: 0 },
    ]);
    expect(got.balances).toEqual([{ granted: 100, balance: 98, reserved: 0, used: 2, refunded: 2 }]);
  });

  it("a call of N consumes costs about N + 5 SQL statements (the usage by day: one upsert per call, not per consume)", async () => {
    const N = 20;
    const { account, batchIds, ids } = await accountWithBatches(1000, [100]);
    const batchId = batchIds[0]!;
    const events: AccountEvent[] = Array.from({ length: N }, (_, i) => ({
      kind: "consume",
      key: `c${i}`,
      amount: 2,
      itemId: `i${i}`,
    }));
    const statements = await runInDurableObject(account, async (o: AccountObject, s) => {
      o.applyBatchEvents(batchId, []); // the schema check, once per object lifetime
      const { value: r, runs } = await watchSql(s.storage.sql, () => o.applyBatchEvents(batchId, events));
      if (!r.ok || r.applied !== N) throw new Error(JSON.stringify(r));
      return runs.map((run) => run.query);
    });
    console.log(`applyBatchEvents: ${statements.length} statements for ${N} consumes`);
    expect(statements.filter((q) => /INSERT INTO ledger/.test(q))).toHaveLength(N);
    expect(statements.filter((q) => /usage_daily/.test(q))).toHaveLength(1);
    expect(statements.length).toBeLessThanOrEqual(N + 5);
    const books_ = await books(account, ids);
    expect(books_.balances).toEqual([{ granted: 1000, balance: 900, reserved: 60, used: 40, refunded: 0 }]);
    expect(books_.batches[0]!.reserved).toBe(60);
  });
});
