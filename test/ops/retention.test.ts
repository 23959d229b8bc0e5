import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { RETENTION_RETRY_MS } from "../../src/batch/retention";
import { ABANDONED_HOLD_MS, retentionMs, TOMBSTONE_MS } from "../../src/domain/retention-policy";
import { IDEMPOTENCY_TTL_MS } from "../../src/account/idempotency";
import {
  accountStub,
  batchStub,
  callJson,
  createBatch,
  drainOutbox,
  getBatch,
  getCredits,
  keyHeaders,
  newAccount,
  newBatch,
  runInBatch,
  urls,
} from "../helpers";
import { expectError } from "../http/support";
import { backdateFinish, DAY_MS, finishedBatch, inAccount, resultKeys, rows, tablesOf } from "./support";

const RETENTION_MS = 30 * DAY_MS; // wrangler.toml's RETENTION_DAYS

function retry(apiKey: string, batchId: string) {
  return callJson(`/api/batch/scrape/${batchId}/retry`, { method: "POST", headers: keyHeaders(apiKey) });
}

/** Undoes an injected delivery failure: the outbox sends to the account again. */
async function restoreDelivery(batchId: string, accountId: string) {
  await runInBatch(batchId, (o) => {
    o.toAccount.send = async (events) => {
      const applied = await accountStub(accountId).applyBatchEvents(batchId, events);
      if (!applied.ok) throw new Error(applied.message);
    };
  });
}

async function ledgerOf(accountId: string) {
  return inAccount(accountId, (s) =>
    rows<{ idem_key: string; kind: string; amount: number }>(
      s,
      "SELECT idem_key, kind, amount FROM ledger ORDER BY seq",
    ),
  );
}

/** Every row the account keeps about one batch, outside the ledger. */
async function accountRowsFor(accountId: string, batchId: string) {
  return inAccount(accountId, (s) => ({
    index: rows<{ status: string; visible: number; reserved: number }>(
      s,
      "SELECT status, visible, reserved FROM batches WHERE batch_id = ?",
      batchId,
    ),
    holds: rows(s, "SELECT key FROM holds WHERE batch_id = ?", batchId),
    slots: rows(s, "SELECT batch_id FROM slots WHERE batch_id = ?", batchId),
    idempotency: rows(s, "SELECT key FROM idempotency WHERE batch_id = ?", batchId),
  }));
}

describe("RETENTION_DAYS", () => {
  it("defaults to 30 days and is at least one day (longer than an Idempotency-Key lives)", () => {
    expect(retentionMs({ RETENTION_DAYS: "7" })).toBe(7 * DAY_MS);
    expect(retentionMs({ RETENTION_DAYS: "1.5" })).toBe(1.5 * DAY_MS);
    for (const bad of [undefined, "", "0", "0.5", "-3", "abc", "Infinity"])
      expect(retentionMs({ RETENTION_DAYS: bad })).toBe(30 * DAY_MS);
    expect(retentionMs({ RETENTION_DAYS: "1" })).toBeGreaterThan(IDEMPOTENCY_TTL_MS - 1);
  });
});

describe("retention: a finished batch is removed by its own alarm after RETENTION_DAYS", () => {
  it("arms the alarm for finishedAt + 30 days once the batch has finished and told its account", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId } = await finishedBatch(apiKey, 2);
    // The alarm that delivered the last events (already due) runs first, then re-arms.
    await runDurableObjectAlarm(batchStub(batchId));
    const { finishedAt, alarm } = await runInBatch(batchId, (_o, s) => ({
      finishedAt: rows<{ f: number }>(s, "SELECT finished_at AS f FROM batch")[0]!.f,
      alarm: s.storage.getAlarm(),
    }));
    expect(await alarm).toBe(finishedAt + RETENTION_MS);
  });

  it("keeps a batch that is not due yet, and a batch that has not finished, whatever its age", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId } = await finishedBatch(apiKey, 1);
    await backdateFinish(batchId, 29);
    await runDurableObjectAlarm(batchStub(batchId));
    expect((await getBatch(apiKey, batchId)).body).toMatchObject({ status: "completed", completedCount: 1 });
    expect(await resultKeys(batchId)).toHaveLength(1);

    const { batchId: open } = await newBatch(apiKey, 1);
    await runInBatch(open, (_o, s) => s.storage.sql.exec("UPDATE batch SET created_at = created_at - ?", 400 * DAY_MS));
    await runInBatch(open, (o) => o.alarm());
    expect((await getBatch(apiKey, open)).status).toBe(200);
  });

  it("removes every row, every result in R2 (orphans too) and the alarm; the account keeps a tombstone and the whole ledger", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const other = await newAccount(100);
    const { batchId, itemIds } = await finishedBatch(apiKey, 3, 1, { output: "json" });
    // A result whose settlement was lost: no item row names it, the prefix does.
    await env.RESULTS.put(`results/${batchId}/orphan`, "{}");
    const neighbour = await finishedBatch(apiKey, 1);
    expect(await resultKeys(batchId)).toHaveLength(3);
    const ledgerBefore = await ledgerOf(accountId);
    const creditsBefore = await getCredits(apiKey);
    expect(await accountRowsFor(accountId, batchId)).toMatchObject({
      index: [{ status: "completed", visible: 1, reserved: 0 }],
      holds: [{}],
      slots: [{}],
    });

    await backdateFinish(batchId, 31);
    expect(await runDurableObjectAlarm(batchStub(batchId))).toBe(true);

    // The batch object stores nothing at all, and has no alarm left.
    expect(await runInBatch(batchId, (_o, s) => tablesOf(s))).toEqual([]);
    expect(await runInBatch(batchId, (_o, s) => s.storage.getAlarm())).toBeNull();
    expect(await resultKeys(batchId)).toEqual([]);
    // The account: a hidden tombstone; holds, slots and Idempotency-Keys gone; every ledger row kept.
    expect(await accountRowsFor(accountId, batchId)).toEqual({
      index: [{ status: "expired", visible: 0, reserved: 0 }],
      holds: [],
      slots: [],
      idempotency: [],
    });
    expect(await ledgerOf(accountId)).toEqual(ledgerBefore);
    const credits = await getCredits(apiKey);
    expect(credits).toEqual(creditsBefore);
    expect(credits.granted).toBe(credits.balance + credits.reserved + credits.used);

    // Reads say it expired, to its owner only; the listing no longer shows it.
    expectError(await getBatch(apiKey, batchId), 410, "BATCH_EXPIRED");
    expectError(
      await callJson(`/api/batch/scrape/${batchId}/items/${itemIds[2]}/result`, { headers: keyHeaders(apiKey) }),
      410,
      "BATCH_EXPIRED",
    );
    expectError(await retry(apiKey, batchId), 410, "BATCH_EXPIRED");
    expectError(
      await callJson(`/api/batch/scrape/${batchId}`, { method: "DELETE", headers: keyHeaders(apiKey) }),
      410,
      "BATCH_EXPIRED",
    );
    expectError(await getBatch(other.apiKey, batchId), 404, "NOT_FOUND");
    expectError(await getBatch(apiKey, crypto.randomUUID()), 404, "NOT_FOUND");
    const list = await callJson("/api/batch/scrape", { headers: keyHeaders(apiKey) });
    expect(list.body.jobs.map((j: { uuid: string }) => j.uuid)).toEqual([neighbour.batchId]);
    expect(list.body.pagination.total).toBe(1);

    // Reading it did not bring the object back, and the neighbour is untouched.
    expect(await runInBatch(batchId, (_o, s) => tablesOf(s))).toEqual([]);
    expect(await resultKeys(neighbour.batchId)).toHaveLength(1);
  });

  it("removes cancelled and failed batches the same way", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const { batchId: cancelled } = await newBatch(apiKey, 4);
    expect(
      (await callJson(`/api/batch/scrape/${cancelled}`, { method: "DELETE", headers: keyHeaders(apiKey) })).status,
    ).toBe(200);
    await drainOutbox(cancelled);
    const { batchId: failed } = await finishedBatch(apiKey, 2, 2);
    for (const id of [cancelled, failed]) {
      await backdateFinish(id, 31);
      await runDurableObjectAlarm(batchStub(id));
      expect(await runInBatch(id, (_o, s) => tablesOf(s))).toEqual([]);
      expect((await accountRowsFor(accountId, id)).index).toEqual([{ status: "expired", visible: 0, reserved: 0 }]);
      expectError(await getBatch(apiKey, id), 410, "BATCH_EXPIRED");
    }
    expect(await getCredits(apiKey)).toMatchObject({ granted: 100, balance: 100, reserved: 0, used: 0 });
  });

  it("deletes nothing until the account has acknowledged the forget; reads already say expired", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const { batchId } = await finishedBatch(apiKey, 2);
    await backdateFinish(batchId, 31);
    await runInBatch(batchId, (o) => {
      o.toAccount.send = async () => {
        throw new Error("injected: account unreachable");
      };
    });
    await runDurableObjectAlarm(batchStub(batchId));

    // Still all here: rows, results, the forget event waiting, an alarm to send it again.
    expect(await runInBatch(batchId, (o) => o.toAccount.size())).toBe(1);
    expect(await runInBatch(batchId, (_o, s) => rows(s, "SELECT kind FROM outbox"))).toEqual([{ kind: "forget" }]);
    expect(await runInBatch(batchId, (_o, s) => s.storage.getAlarm())).not.toBeNull();
    expect(await resultKeys(batchId)).toHaveLength(2);
    expect((await accountRowsFor(accountId, batchId)).index).toEqual([
      { status: "completed", visible: 1, reserved: 0 },
    ]);
    // The batch is being removed: its owner is told so, and a retry cannot revive it.
    expectError(await getBatch(apiKey, batchId), 410, "BATCH_EXPIRED");

    // The account answers again: the next alarm finishes the job.
    await restoreDelivery(batchId, accountId);
    await runDurableObjectAlarm(batchStub(batchId));
    expect(await runInBatch(batchId, (_o, s) => tablesOf(s))).toEqual([]);
    expect(await resultKeys(batchId)).toEqual([]);
    expect((await accountRowsFor(accountId, batchId)).index).toEqual([{ status: "expired", visible: 0, reserved: 0 }]);
  });

  it("keeps the rows when R2 fails, and tries again later", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId } = await finishedBatch(apiKey, 1);
    await backdateFinish(batchId, 31);
    await runInBatch(batchId, (o) => {
      const real = env.RESULTS;
      const failing = new Proxy(real, {
        get: (target, prop) => {
          if (prop === "delete") return () => Promise.reject(new Error("injected: R2 down"));
          const value: unknown = Reflect.get(target, prop);
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
      Reflect.set(o, "env", { ...Reflect.get(o, "env"), RESULTS: failing });
    });
    const before = Date.now();
    await runDurableObjectAlarm(batchStub(batchId));
    expect(await runInBatch(batchId, (_o, s) => tablesOf(s))).toContain("batch");
    expect(await resultKeys(batchId)).toHaveLength(1);
    const alarm = await runInBatch(batchId, (_o, s) => s.storage.getAlarm());
    expect(alarm).toBeGreaterThanOrEqual(before + RETENTION_RETRY_MS);
    // R2 answers again.
    await runInBatch(batchId, (o) => Reflect.set(o, "env", { ...Reflect.get(o, "env"), RESULTS: env.RESULTS }));
    await runDurableObjectAlarm(batchStub(batchId));
    expect(await runInBatch(batchId, (_o, s) => tablesOf(s))).toEqual([]);
    expect(await resultKeys(batchId)).toEqual([]);
  });

  it("waits while a retry is asking the account for credits", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId } = await finishedBatch(apiKey, 1, 1);
    await backdateFinish(batchId, 31);
    // A retry in flight: its hold is 'reserving' until the account answers.
    await runInBatch(batchId, (_o, s) =>
      s.storage.sql.exec(
        "INSERT INTO holds (key, state, amount, created_at) VALUES (?, 'reserving', 2, ?)",
        `${batchId}:retry:1`,
        Date.now(),
      ),
    );
    await runDurableObjectAlarm(batchStub(batchId));
    expect((await getBatch(apiKey, batchId)).body).toMatchObject({ status: "failed" });
    expect(await runInBatch(batchId, (o) => o.toAccount.size())).toBe(0);
    expect(await runInBatch(batchId, (_o, s) => s.storage.getAlarm())).not.toBeNull();
  });

  it("a batch revived by a retry is kept: the clock starts again when it finishes again", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId } = await finishedBatch(apiKey, 1, 1);
    await backdateFinish(batchId, 20);
    expect((await retry(apiKey, batchId)).status).toBe(202);
    await drainOutbox(batchId);
    const alarm = await runInBatch(batchId, (_o, s) => s.storage.getAlarm());
    expect(alarm === null || alarm < Date.now() + DAY_MS).toBe(true); // no retention alarm while it runs
    const item = (await getBatch(apiKey, batchId)).body.items[0];
    const lease = await batchStub(batchId).startItem(item.uuid);
    if (lease.action !== "run") throw new Error("not started");
    await batchStub(batchId).completeItem(item.uuid, lease.attempt, {});
    await drainOutbox(batchId);
    await runDurableObjectAlarm(batchStub(batchId));
    const { finishedAt, at } = await runInBatch(batchId, async (_o, s) => ({
      finishedAt: rows<{ f: number }>(s, "SELECT finished_at AS f FROM batch")[0]!.f,
      at: await s.storage.getAlarm(),
    }));
    expect(finishedAt).toBeGreaterThan(Date.now() - 60_000);
    expect(at).toBe(finishedAt + RETENTION_MS);
  });
});

describe("retention: other rows that would grow without bound", () => {
  it("Idempotency-Key records expire after 24 h (the account's alarm), and the key works again", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const headers = { "idempotency-key": "daily-report" };
    const first = await createBatch(apiKey, { urls: urls(1) }, headers);
    expect(first.status).toBe(202);
    expect((await createBatch(apiKey, { urls: urls(1) }, headers)).body.batchId).toBe(first.body.batchId);
    await inAccount(accountId, (s) =>
      s.storage.sql.exec("UPDATE idempotency SET created_at = created_at - ?", IDEMPOTENCY_TTL_MS + 1000),
    );
    expect(await runDurableObjectAlarm(accountStub(accountId))).toBe(true);
    expect(await inAccount(accountId, (s) => rows(s, "SELECT key FROM idempotency"))).toEqual([]);
    const again = await createBatch(apiKey, { urls: urls(1) }, headers);
    expect(again.status).toBe(202);
    expect(again.body.batchId).not.toBe(first.body.batchId);
  });

  it("keeps a younger Idempotency-Key record", async () => {
    const { apiKey, accountId } = await newAccount(100);
    await createBatch(apiKey, { urls: urls(1) }, { "idempotency-key": "k-young" });
    await inAccount(accountId, (s) =>
      s.storage.sql.exec("UPDATE idempotency SET created_at = created_at - ?", IDEMPOTENCY_TTL_MS - 60_000),
    );
    await runDurableObjectAlarm(accountStub(accountId));
    expect(await inAccount(accountId, (s) => rows(s, "SELECT key FROM idempotency"))).toEqual([{ key: "k-young" }]);
  });

  it("outbox rows are deleted once acknowledged, and kept until then", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 3);
    expect(await runInBatch(batchId, (_o, s) => rows(s, "SELECT seq FROM outbox"))).toEqual([]);
    await runInBatch(batchId, (o) => {
      o.toAccount.send = async () => {
        throw new Error("injected");
      };
    });
    expect(
      (await callJson(`/api/batch/scrape/${batchId}`, { method: "DELETE", headers: keyHeaders(apiKey) })).status,
    ).toBe(200);
    expect(
      await runInBatch(batchId, (_o, s) =>
        rows<{ kind: string }>(s, "SELECT kind FROM outbox ORDER BY seq").map((r) => r.kind),
      ),
    ).toEqual(expect.arrayContaining(["refund", "status"]));
    await restoreDelivery(batchId, accountId);
    await drainOutbox(batchId);
    expect(await runInBatch(batchId, (_o, s) => rows(s, "SELECT seq FROM outbox"))).toEqual([]);
    expect(await runInBatch(batchId, (_o, s) => rows(s, "SELECT seq FROM sends"))).toEqual([]);
  });

  it("a batch object that never got its batch forgets its refused hold after a week", async () => {
    const batchId = crypto.randomUUID();
    expect(await batchStub(batchId).resolveHold(`${batchId}:create`)).toBe("abandoned");
    const alarm = await runInBatch(batchId, (_o, s) => s.storage.getAlarm());
    expect(alarm).toBeGreaterThan(Date.now() + ABANDONED_HOLD_MS - 60_000);
    // Before the week is over the refusal stands.
    await runDurableObjectAlarm(batchStub(batchId));
    expect(await runInBatch(batchId, (_o, s) => rows(s, "SELECT state FROM holds"))).toEqual([{ state: "abandoned" }]);
    await runInBatch(batchId, (_o, s) =>
      s.storage.sql.exec("UPDATE holds SET created_at = created_at - ?", ABANDONED_HOLD_MS),
    );
    await runInBatch(batchId, (_o, s) => s.storage.setAlarm(Date.now()));
    await runDurableObjectAlarm(batchStub(batchId));
    expect(await runInBatch(batchId, (_o, s) => tablesOf(s))).toEqual([]);
    expect(await runInBatch(batchId, (_o, s) => s.storage.getAlarm())).toBeNull();
  });

  it("the account forgets void holds of batches never created after a week, and keeps the others", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 1);
    const ghost = crypto.randomUUID();
    const now = Date.now();
    await inAccount(accountId, (s) => {
      const insert =
        "INSERT INTO holds (key, batch_id, purpose, amount, state, created_at) VALUES (?, ?, ?, 0, 'void', ?)";
      s.storage.sql.exec(insert, `${ghost}:create`, ghost, "create", now - ABANDONED_HOLD_MS - 1000);
      s.storage.sql.exec(insert, `${crypto.randomUUID()}:create`, crypto.randomUUID(), "create", now - 1000);
      s.storage.sql.exec(insert, `${batchId}:retry:9`, batchId, "tombstone", now - ABANDONED_HOLD_MS - 1000);
    });
    await inAccount(accountId, (s) => s.storage.setAlarm(Date.now()));
    await runDurableObjectAlarm(accountStub(accountId));
    const left = await inAccount(accountId, (s) =>
      rows<{ batch_id: string; state: string }>(s, "SELECT batch_id, state FROM holds ORDER BY created_at"),
    );
    expect(left.map((h) => h.batch_id)).not.toContain(ghost);
    expect(left).toHaveLength(3); // the batch's own hold, the young void one, the live batch's tombstone
  });

  it("tombstones go a year after removal: the batch is then simply not found", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const { batchId } = await finishedBatch(apiKey, 1);
    await backdateFinish(batchId, 31);
    await runDurableObjectAlarm(batchStub(batchId));
    expectError(await getBatch(apiKey, batchId), 410, "BATCH_EXPIRED");
    // Not yet: a young tombstone survives the account's alarm.
    await inAccount(accountId, (s) => s.storage.setAlarm(Date.now()));
    await runDurableObjectAlarm(accountStub(accountId));
    expect((await accountRowsFor(accountId, batchId)).index).toHaveLength(1);
    await inAccount(accountId, (s) =>
      s.storage.sql.exec(
        "UPDATE batches SET finished_at = finished_at - ? WHERE batch_id = ?",
        TOMBSTONE_MS + RETENTION_MS,
        batchId,
      ),
    );
    await inAccount(accountId, (s) => s.storage.setAlarm(Date.now()));
    await runDurableObjectAlarm(accountStub(accountId));
    expect((await accountRowsFor(accountId, batchId)).index).toEqual([]);
    expectError(await getBatch(apiKey, batchId), 404, "NOT_FOUND");
    expect((await ledgerOf(accountId)).length).toBeGreaterThan(0);
  });

  it("a forget is refused while the books say the batch still holds credits", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 2);
    const answer = await accountStub(accountId).applyBatchEvents(batchId, [{ kind: "forget" }]);
    expect(answer).toMatchObject({
      ok: false,
      code: "INTERNAL_ERROR",
      message: expect.stringMatching(/still holds 4 credits/),
    });
    expect((await accountRowsFor(accountId, batchId)).index).toMatchObject([{ status: "pending", visible: 1 }]);
  });

  it("a forget applied twice changes nothing the second time", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const { batchId } = await finishedBatch(apiKey, 1);
    expect(await accountStub(accountId).applyBatchEvents(batchId, [{ kind: "forget" }])).toEqual({
      ok: true,
      applied: 1,
    });
    expect(await accountStub(accountId).applyBatchEvents(batchId, [{ kind: "forget" }])).toEqual({
      ok: true,
      applied: 0,
    });
    // A late status event does not bring the tombstone back.
    await accountStub(accountId).applyBatchEvents(batchId, [
      {
        kind: "status",
        version: 10_000,
        snapshot: { status: "completed", completed: 1, failed: 0, cancelled: 0, finishedAt: Date.now() },
      },
    ]);
    expect((await accountRowsFor(accountId, batchId)).index).toEqual([{ status: "expired", visible: 0, reserved: 0 }]);
  });
});
