/**
 * The grouped executor contract: startItems (one call per queue batch) and settleItems
 * (settlements that came in together). Each group is one transaction, answers in order,
 * and ends in the same state as the one-item calls would.
 */
import { describe, expect, it } from "vitest";
import type { BatchObject } from "../../src/batch/batch-object";
import { MAX_ITEMS_PER_CALL, type SettleReport } from "../../src/domain/executor-contract";
import { LIMITS } from "../../src/domain/limits";
import {
  batchStub,
  drainOutbox,
  expectBalanced,
  getBatch,
  newAccount,
  newBatch,
  runInBatch,
  watchSql,
} from "../helpers";

/** The batch's status, its count of items in each state and its credits. */
const BATCH_FIELDS = [
  "status",
  ...["pending", "running", "completed", "failed", "cancelled"].map((state) => `${state}Count`),
  "creditsUsed",
  "creditsRefunded",
];

/** The batch row and items without times (they differ between two runs). */
async function stateOf(apiKey: string, batchId: string) {
  const { body } = await getBatch(apiKey, batchId);
  const items = (body.items as Record<string, unknown>[]).map(({ status, attempts, creditsUsed, result, error }) => ({
    status,
    attempts,
    creditsUsed,
    result,
    error,
  }));
  return { batch: Object.fromEntries(BATCH_FIELDS.map((field) => [field, body[field]])), items };
}

describe("startItems", () => {
  it("grants leases in order, one answer per request; a repeated item in the group is dropped", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 4);
    const answers = await batchStub(batchId).startItems([
      { itemId: itemIds[2]! },
      { itemId: itemIds[0]! },
      { itemId: itemIds[2]! },
      { itemId: crypto.randomUUID() },
    ]);
    expect(answers.map((a) => (a.action === "run" ? a.itemId : a.reason))).toEqual([
      itemIds[2],
      itemIds[0],
      "ITEM_NOT_PENDING",
      "ITEM_NOT_FOUND",
    ]);
    expect(answers[0]).toMatchObject({ action: "run", attempt: 1, url: "https://example.com/page/2" });
    const { body } = await getBatch(apiKey, batchId);
    expect(body).toMatchObject({ status: "running", runningCount: 2, pendingCount: 2 });
  });

  it("a stale dispatch token drops only its own request", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 2);
    const answers = await batchStub(batchId).startItems([
      { itemId: itemIds[0]!, dispatch: 99 },
      { itemId: itemIds[1]! },
    ]);
    expect(answers.map((a) => a.action)).toEqual(["drop", "run"]);
    expect(answers[0]).toEqual({ action: "drop", reason: "STALE_DISPATCH" });
  });

  it("refuses more than MAX_ITEMS_PER_CALL requests (startItems and settleItems), and changes nothing", async () => {
    const { apiKey } = await newAccount(1000);
    const { batchId, itemIds } = await newBatch(apiKey, 2);
    const stub = batchStub(batchId);
    const many = Array.from({ length: MAX_ITEMS_PER_CALL + 1 }, (_, i) => ({ itemId: itemIds[i % 2]! }));
    const answers = await stub.startItems(many);
    expect(new Set(answers.map((a) => (a.action === "drop" ? a.reason : "run")))).toEqual(new Set(["TOO_MANY_ITEMS"]));
    expect((await getBatch(apiKey, batchId)).body).toMatchObject({ runningCount: 0, pendingCount: 2 });
    const [lease] = await stub.startItems([{ itemId: itemIds[0]! }]);
    const reports = many.map(
      ({ itemId }): SettleReport => ({
        itemId,
        attempt: (lease as { attempt: number }).attempt,
        outcome: "completed",
        result: 1,
      }),
    );
    expect(
      new Set((await stub.settleItems(reports)).map((a) => (a.outcome === "ignored" ? a.reason : a.outcome))),
    ).toEqual(new Set(["TOO_MANY_ITEMS"]));
    expect((await getBatch(apiKey, batchId)).body).toMatchObject({ runningCount: 1, completedCount: 0 });
  });

  it("never races a cancel: each group runs wholly before it (all run, charged) or after it (all dropped)", async () => {
    const { apiKey, accountId } = await newAccount(10_000);
    const { batchId, itemIds } = await newBatch(apiKey, 200);
    const stub = batchStub(batchId);
    const groups = Array.from({ length: 20 }, (_, g) => itemIds.slice(g * 10, g * 10 + 10));
    const cancelAt = 1 + Math.floor(Math.random() * 18);
    // Sent in this order without waiting: groups 0 .. cancelAt-1, the cancel, the rest.
    const calls: Promise<unknown>[] = [];
    for (const [g, group] of groups.entries()) {
      if (g === cancelAt) calls.push(stub.cancel(accountId));
      calls.push(stub.startItems(group.map((itemId) => ({ itemId }))));
    }
    const settled = await Promise.all(calls);
    const cancel = settled[cancelAt] as { ok: boolean; cancelledItems: number };
    expect(cancel.ok).toBe(true);
    const answers = settled.filter((_, i) => i !== cancelAt) as { action: string }[][];
    for (const group of answers) {
      const actions = new Set(group.map((a) => a.action));
      expect(actions.size).toBe(1); // never half a group
    }
    const startedGroups = answers.filter((g) => g[0]!.action === "run").length;
    expect(startedGroups).toBe(cancelAt);
    expect(cancel.cancelledItems).toBe(200 - cancelAt * 10);
    // Running items finish and are charged; the rest was refunded once.
    for (const [g, group] of groups.slice(0, cancelAt).entries()) {
      const reports = group.map(
        (itemId): SettleReport => ({ itemId, attempt: 1, outcome: "completed", result: { g } }),
      );
      expect((await stub.settleItems(reports)).every((r) => r.outcome === "settled")).toBe(true);
    }
    const credits = await expectBalanced(apiKey, [batchId]);
    expect(credits).toMatchObject({ used: cancelAt * 10 * 2, reserved: 0, refunded: (200 - cancelAt * 10) * 2 });
  });
});

describe("settleItems", () => {
  it("settles a mixed group in order, with the same end state as one call per item", async () => {
    const run = async (grouped: boolean) => {
      const { apiKey } = await newAccount(100);
      const { batchId, itemIds } = await newBatch(apiKey, 6);
      const stub = batchStub(batchId);
      const leases = await stub.startItems(itemIds.slice(0, 5).map((itemId) => ({ itemId })));
      const attempt = (i: number) => (leases[i]!.action === "run" ? (leases[i] as { attempt: number }).attempt : 0);
      const reports: SettleReport[] = [
        { itemId: itemIds[0]!, attempt: attempt(0), outcome: "completed", result: { n: 0 }, meta: { statusCode: 200 } },
        {
          itemId: itemIds[1]!,
          attempt: attempt(1),
          outcome: "failed",
          error: { code: "HTTP_404", message: "Not Found" },
        },
        {
          itemId: itemIds[2]!,
          attempt: attempt(2),
          outcome: "failed",
          error: { code: "HTTP_503", message: "busy" },
          retryable: true,
        },
        { itemId: itemIds[3]!, attempt: attempt(3) + 1, outcome: "completed", result: { n: 3 } },
        { itemId: itemIds[0]!, attempt: attempt(0), outcome: "completed", result: { n: 0 } },
        { itemId: itemIds[5]!, attempt: 1, outcome: "completed", result: { n: 5 } },
        { itemId: itemIds[4]!, attempt: attempt(4), outcome: "completed", result: { n: 4 } },
      ];
      const answers = grouped
        ? await stub.settleItems(reports)
        : await Promise.all(reports.map((r) => stub.settleItems([r]).then((a) => a[0]!)));
      return { answers, state: await stateOf(apiKey, batchId), credits: await expectBalanced(apiKey, [batchId]) };
    };
    const grouped = await run(true);
    expect(grouped.answers).toEqual([
      { ok: true, outcome: "settled" },
      { ok: true, outcome: "settled" },
      { ok: true, outcome: "requeued" },
      { ok: true, outcome: "ignored", reason: "STALE_ATTEMPT" },
      { ok: true, outcome: "duplicate" },
      { ok: true, outcome: "ignored", reason: "ITEM_NOT_RUNNING" },
      { ok: true, outcome: "settled" },
    ]);
    expect(grouped.state.batch).toMatchObject({
      completedCount: 2,
      failedCount: 1,
      runningCount: 1,
      pendingCount: 2,
      creditsUsed: 4,
      creditsRefunded: 2,
    });
    expect(grouped.credits).toMatchObject({ used: 4, reserved: 6, refunded: 2 });
    const single = await run(false);
    expect(single.answers).toEqual(grouped.answers);
    expect(single.state).toEqual(grouped.state);
    expect(single.credits).toEqual(grouped.credits);
  });

  it("writes the batch row and its index snapshot once for the group; the account gets one event per item", async () => {
    const { apiKey } = await newAccount(1000);
    const { batchId, itemIds } = await newBatch(apiKey, 30);
    const stub = batchStub(batchId);
    const leases = await stub.startItems(itemIds.slice(0, 20).map((itemId) => ({ itemId })));
    await drainOutbox(batchId);
    const reports = itemIds.slice(0, 20).map(
      (itemId, i): SettleReport => ({
        itemId,
        attempt: (leases[i] as { attempt: number }).attempt,
        outcome: "completed",
        result: i,
      }),
    );
    const { value: answers, runs } = await runInBatch(batchId, (o, s) =>
      watchSql(s.storage.sql, () => o.settleItems(reports)),
    );
    expect(answers.every((a) => a.outcome === "settled")).toBe(true);
    expect(runs.filter((r) => /^\s*UPDATE batch\b/.test(r.query))).toHaveLength(1);
    const kinds = await runInBatch(batchId, (_o, s) =>
      s.storage.sql.exec<{ kind: string; n: number }>("SELECT kind, count(*) AS n FROM outbox GROUP BY kind").toArray(),
    );
    expect(Object.fromEntries(kinds.map((k) => [k.kind, k.n]))).toEqual({ consume: 20, status: 1 });
    expect((await getBatch(apiKey, batchId)).body.completedCount).toBe(20);
    expect(await expectBalanced(apiKey, [batchId])).toMatchObject({ used: 40, reserved: 20 });
  });

  it("settles a result too large to keep inline as failed and refunded; the rest of the group is unaffected", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 2);
    const stub = batchStub(batchId);
    const [a, b] = await stub.startItems(itemIds.map((itemId) => ({ itemId })));
    const big = "x".repeat(LIMITS.maxInlineResultBytes + 1);
    const answers = await stub.settleItems([
      { itemId: itemIds[0]!, attempt: (a as { attempt: number }).attempt, outcome: "completed", result: "small" },
      { itemId: itemIds[1]!, attempt: (b as { attempt: number }).attempt, outcome: "completed", result: big },
    ]);
    expect(answers).toEqual([
      { ok: true, outcome: "settled" },
      { ok: true, outcome: "settled" },
    ]);
    const { body } = await getBatch(apiKey, batchId);
    expect(body).toMatchObject({ completedCount: 1, failedCount: 1, creditsUsed: 2, creditsRefunded: 2 });
    expect(body.items[1]).toMatchObject({ status: "failed", errorCode: "RESULT_TOO_LARGE" });
    expect(await expectBalanced(apiKey, [batchId])).toMatchObject({ used: 2, reserved: 0 });
  });
});

describe("the alarm after hot-path calls", () => {
  it("a start sets it no later than the lease's end; settlements wait at most the settlement window; a finished batch's go at once", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 2);
    const _stub = batchStub(batchId);
    await drainOutbox(batchId);
    await runInBatch(batchId, (_o, s) => s.storage.deleteAlarm());
    // A fresh instance reads the alarm from storage once; these run in the same instance.
    // Each call runs inside the object and gives the alarm it left (the last one it set, else
    // the one before), read before a due alarm can fire, and the object's clock just after
    // the call: bounds are against that or a lease's end, so a slow machine cannot fail them.
    const alarmLeftBy = <R>(call: (o: BatchObject) => Promise<R>) =>
      runInBatch(batchId, async (o, state) => {
        let at = await state.storage.getAlarm();
        const real = state.storage.setAlarm;
        state.storage.setAlarm = (t: number | Date, options?: DurableObjectSetAlarmOptions) => {
          at = typeof t === "number" ? t : t.getTime();
          return real.call(state.storage, t, options);
        };
        try {
          const value = await call(o);
          return { value, alarm: at, returnedAt: Date.now() };
        } finally {
          state.storage.setAlarm = real;
        }
      });

    const start = await alarmLeftBy((o) => o.startItems(itemIds.map((itemId) => ({ itemId }))));
    const [a, b] = start.value;
    if (a?.action !== "run" || b?.action !== "run") throw new Error("both items should start");
    expect(start.alarm).not.toBeNull();
    expect(start.alarm!).toBeLessThanOrEqual(Math.min(a.leaseExpiresAt, b.leaseExpiresAt));

    const settle = await alarmLeftBy((o) =>
      o.settleItems([{ itemId: itemIds[0]!, attempt: a.attempt, outcome: "completed", result: 1 }]),
    );
    expect(settle.value).toEqual([{ ok: true, outcome: "settled" }]);
    expect(settle.alarm).not.toBeNull();
    expect(settle.alarm!).toBeLessThanOrEqual(settle.returnedAt + 250);

    await runInBatch(batchId, (o) => o.alarm());
    const finish = await alarmLeftBy((o) =>
      o.settleItems([{ itemId: itemIds[1]!, attempt: b.attempt, outcome: "completed", result: 2 }]),
    );
    expect((await getBatch(apiKey, batchId)).body.status).toBe("completed");
    expect(finish.alarm).not.toBeNull();
    expect(finish.alarm!).toBeLessThanOrEqual(finish.returnedAt);
  });
});
