/**
 * Injected faults, each ending with nothing lost and nothing doubled: refund deliveries
 * failing (with or without the account having applied them), objects evicted mid-run,
 * consumers dying after startItem, queue messages repeated or out of order, a webhook
 * target that is down.
 * (The R2 write failing runs on the real queue path: test/queue/reliability-faults.test.ts.)
 */
import { abortAllDurableObjects, evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import type { AccountObject } from "../../src/account/account-object";
import {
  accountStub,
  batchStub,
  callJson,
  drainOutbox,
  getBatch,
  interceptReserveHold,
  keyHeaders,
  newAccount,
  newBatch,
  runInBatch,
} from "../helpers";
import { count, reportFigures } from "./figures";
import { breakOutbox } from "./model/faults";
import { rounds, timeLimit } from "./runs";
import { cancelBatch, completeAll, expectBooksClosed, retryBatch, sleep, startItems } from "./support";

reportFigures("faults");

/** The batch's next `n` deliveries to the account fail; `replyLost`: the account applies them first. */
const failDeliveries = breakOutbox;

/** A lease runs out: the consumer died. The alarm takes the item back. */
async function expireLeases(batchId: string): Promise<void> {
  count("faults");
  await runInBatch(batchId, async (o, state) => {
    state.storage.sql.exec("UPDATE items SET lease_expires_at = ? WHERE status = 'running'", Date.now() - 1);
    await o.alarm();
  });
}

describe("the account object failing deliveries of refunds", () => {
  const cases = [1, 2, 3].flatMap((n) => [false, true].map((replyLost) => [n, replyLost] as const));

  it.each(cases)(
    "%i failed deliveries (reply lost: %s) of item refunds, a consume and a cancel refund: each applied exactly once",
    async (n, replyLost) => {
      for (let round = 0; round < rounds(1); round++) {
        const { apiKey, accountId } = await newAccount(100);
        const { batchId, itemIds } = await newBatch(apiKey, 8);
        const stub = batchStub(batchId);
        const [a, b, c] = await startItems(batchId, itemIds.slice(0, 3));
        await failDeliveries(batchId, n, replyLost);
        expect(await stub.failItem(a!.itemId, a!.attempt, { code: "HTTP_404", message: "gone" })).toEqual({
          ok: true,
          outcome: "settled",
        });
        expect(await stub.completeItem(b!.itemId, b!.attempt, {})).toEqual({ ok: true, outcome: "settled" });
        const cancel = await cancelBatch(apiKey, batchId);
        expect(cancel.body).toEqual({ status: "cancelled", cancelledItems: 5, creditsRefunded: 10 });
        await failDeliveries(batchId, n, replyLost);
        await completeAll(batchId, [c!]);

        const { credits, ledger } = await expectBooksClosed(apiKey, accountId, [batchId]);
        expect(credits).toMatchObject({ balance: 96, reserved: 0, used: 4, refunded: 12 });
        const refunds = ledger.filter((e) => e.kind === "refund").map((e) => [e.idempotencyKey, e.amount]);
        expect(refunds.sort()).toEqual(
          [
            [`${batchId}:${a!.itemId}:r1:refund`, 2],
            [`${batchId}:cancel`, 10],
          ].sort(),
        );
      }
    },
    timeLimit(10_000),
  );

  it("deliveries down for a long time: events pile up, then arrive once, in order, when the account answers again", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 6);
    await failDeliveries(batchId, 1000, false);
    const leases = await startItems(batchId, itemIds.slice(0, 4));
    const stub = batchStub(batchId);
    for (const l of leases.slice(0, 2)) await stub.completeItem(l.itemId, l.attempt, {});
    for (const l of leases.slice(2)) await stub.failItem(l.itemId, l.attempt, { code: "HTTP_410", message: "gone" });
    await cancelBatch(apiKey, batchId);
    for (let k = 0; k < 5; k++) await runInBatch(batchId, (o) => o.alarm());
    // Nothing reached the account yet: everything still held.
    expect(await accountStub(accountId).getCredits()).toMatchObject({ reserved: 12, used: 0, refunded: 0 });
    expect(await runInBatch(batchId, (o) => o.toAccount.size())).toBeGreaterThan(0);
    await evictDurableObject(batchStub(batchId)); // the fault lived in memory: gone with the object
    const { credits } = await expectBooksClosed(apiKey, accountId, [batchId]);
    expect(credits).toMatchObject({ balance: 96, reserved: 0, used: 4, refunded: 8 });
  });
});

describe("objects evicted mid-run", () => {
  it(
    `${rounds(2)} rounds: the batch object evicted between every step of its items' lives`,
    async () => {
      for (let round = 0; round < rounds(2); round++) {
        const { apiKey, accountId } = await newAccount(100);
        const { batchId, itemIds } = await newBatch(apiKey, 8);
        const evict = async () => {
          count("faults");
          await evictDurableObject(batchStub(batchId));
        };
        for (const [k, id] of itemIds.slice(0, 6).entries()) {
          const r = await batchStub(batchId).startItem(id);
          if (r.action !== "run") throw new Error(r.reason);
          await evict();
          expect(await batchStub(batchId).startItem(id)).toEqual({ action: "drop", reason: "ITEM_NOT_PENDING" });
          if (k % 3 === 2) await failDeliveries(batchId, 1, k % 2 === 0);
          const settled =
            k % 2 === 0
              ? await batchStub(batchId).completeItem(id, r.attempt, {})
              : await batchStub(batchId).failItem(id, r.attempt, { code: "HTTP_404", message: "gone" });
          expect(settled).toEqual({ ok: true, outcome: "settled" });
          await evict();
        }
        expect((await cancelBatch(apiKey, batchId)).body).toEqual({
          status: "cancelled",
          cancelledItems: 2,
          creditsRefunded: 4,
        });
        await evict();
        const { credits } = await expectBooksClosed(apiKey, accountId, [batchId]);
        expect(credits).toMatchObject({ balance: 94, reserved: 0, used: 6, refunded: 10 });
      }
    },
    timeLimit(10_000),
  );

  it("the account object evicted while batches deliver to it: nothing applied twice or lost", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const batches = [await newBatch(apiKey, 4), await newBatch(apiKey, 4)];
    for (const { batchId, itemIds } of batches) {
      const leases = await startItems(batchId, itemIds.slice(0, 2));
      const settles = leases.map((l) => batchStub(batchId).completeItem(l.itemId, l.attempt, {}));
      count("faults");
      const evicted = evictDurableObject(accountStub(accountId));
      await Promise.allSettled([...settles, evicted]);
      await cancelBatch(apiKey, batchId);
    }
    const { credits } = await expectBooksClosed(
      apiKey,
      accountId,
      batches.map((b) => b.batchId),
    );
    expect(credits).toMatchObject({ balance: 92, reserved: 0, used: 8, refunded: 8 });
  });
});

describe("a consumer dying after startItem", () => {
  it("every attempt's consumer dies: three leases expire, the item fails once and is refunded once; late reports are ignored", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 1);
    const stub = batchStub(batchId);
    const id = itemIds[0]!;
    const attempts: number[] = [];
    for (let k = 1; k <= 3; k++) {
      const r = await stub.startItem(id);
      expect(r).toMatchObject({ action: "run", attempt: k });
      if (r.action === "run") attempts.push(r.attempt);
      await expireLeases(batchId);
    }
    expect((await getBatch(apiKey, batchId)).body.items[0]).toMatchObject({
      status: "failed",
      attempts: 3,
      errorCode: "LEASE_EXPIRED",
    });
    expect(await stub.startItem(id)).toEqual({ action: "drop", reason: "ITEM_NOT_PENDING" });
    // The dead consumers wake up and report, in any order.
    expect(await stub.completeItem(id, 1, {})).toEqual({ ok: true, outcome: "ignored", reason: "ITEM_NOT_RUNNING" });
    expect(await stub.completeItem(id, 3, {})).toEqual({ ok: true, outcome: "ignored", reason: "ITEM_NOT_RUNNING" });
    expect(await stub.failItem(id, 2, { code: "TIMEOUT", message: "late" }, { retryable: true })).toEqual({
      ok: true,
      outcome: "ignored",
      reason: "ITEM_NOT_RUNNING",
    });
    const { credits, ledger } = await expectBooksClosed(apiKey, accountId, [batchId]);
    expect(credits).toMatchObject({ balance: 100, reserved: 0, used: 0, refunded: 2 });
    expect(ledger.filter((e) => e.kind === "refund")).toHaveLength(1);
  });

  it("the first consumer dies, the second completes: charged once; the first's late completion is ignored", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 2);
    const stub = batchStub(batchId);
    const id = itemIds[0]!;
    const first = await stub.startItem(id);
    await expireLeases(batchId);
    const second = await stub.startItem(id);
    expect([first, second]).toMatchObject([
      { action: "run", attempt: 1 },
      { action: "run", attempt: 2 },
    ]);
    expect(await stub.completeItem(id, 1, { from: "dead consumer" })).toEqual({
      ok: true,
      outcome: "ignored",
      reason: "STALE_ATTEMPT",
    });
    expect(await stub.completeItem(id, 2, {})).toEqual({ ok: true, outcome: "settled" });
    expect(await stub.completeItem(id, 1, {})).toEqual({ ok: true, outcome: "ignored", reason: "ITEM_NOT_RUNNING" });
    const { credits } = await expectBooksClosed(apiKey, accountId, [batchId]);
    expect(credits).toMatchObject({ balance: 96, reserved: 2, used: 2 });
  });
});

describe("queue messages delivered twice or out of order", () => {
  it("a repeated start, repeated settlements and reports out of order: one run, one charge", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 3);
    const stub = batchStub(batchId);
    const [x, y, z] = itemIds as [string, string, string];
    count("faults", 7);

    // Same message twice: the second start is dropped.
    const rx = await stub.startItem(x, 0);
    expect(rx).toMatchObject({ action: "run", attempt: 1 });
    expect(await stub.startItem(x, 0)).toEqual({ action: "drop", reason: "ITEM_NOT_PENDING" });
    // The completion delivered twice, then a failure report for the same attempt arriving late.
    expect(await stub.completeItem(x, 1, {})).toEqual({ ok: true, outcome: "settled" });
    expect(await stub.completeItem(x, 1, {})).toEqual({ ok: true, outcome: "duplicate" });
    expect(await stub.failItem(x, 1, { code: "HTTP_500", message: "late" }, { retryable: true })).toEqual({
      ok: true,
      outcome: "ignored",
      reason: "ITEM_NOT_RUNNING",
    });

    // A message from an older dispatch arrives after a newer one was sent: stale, dropped.
    await runInBatch(batchId, (_o, state) =>
      state.storage.sql.exec("UPDATE items SET dispatch_token = 2 WHERE id = ?", y),
    );
    expect(await stub.startItem(y, 1)).toEqual({ action: "drop", reason: "STALE_DISPATCH" });
    expect(await stub.startItem(y, 2)).toMatchObject({ action: "run", attempt: 1 });
    expect(await stub.startItem(y, 2)).toEqual({ action: "drop", reason: "ITEM_NOT_PENDING" });
    // A retryable failure requeues; its repeat is ignored; the next attempt fails for good; refunded once.
    expect(await stub.failItem(y, 1, { code: "HTTP_503", message: "busy" }, { retryable: true })).toEqual({
      ok: true,
      outcome: "requeued",
    });
    expect(await stub.failItem(y, 1, { code: "HTTP_503", message: "busy" }, { retryable: true })).toEqual({
      ok: true,
      outcome: "ignored",
      reason: "ITEM_NOT_RUNNING",
    });
    expect(await stub.startItem(y, 2)).toMatchObject({ action: "run", attempt: 2 });
    expect(await stub.failItem(y, 2, { code: "HTTP_404", message: "gone" })).toEqual({ ok: true, outcome: "settled" });
    expect(await stub.failItem(y, 2, { code: "HTTP_404", message: "gone" })).toEqual({
      ok: true,
      outcome: "duplicate",
    });

    // A settlement that arrives before its start (no lease yet) changes nothing.
    expect(await stub.completeItem(z, 1, {})).toEqual({ ok: true, outcome: "ignored", reason: "ITEM_NOT_RUNNING" });
    expect((await getBatch(apiKey, batchId)).body.items[2]).toMatchObject({ status: "pending", attempts: 0 });

    const { credits, ledger } = await expectBooksClosed(apiKey, accountId, [batchId]);
    expect(credits).toMatchObject({ balance: 96, reserved: 2, used: 2, refunded: 2 });
    expect(ledger.filter((e) => e.kind === "consume")).toHaveLength(1);
    expect(ledger.filter((e) => e.kind === "refund")).toHaveLength(1);
  });
});

describe("a webhook target that is down", () => {
  it("its events are retried until it answers, then each arrives once; the books do not depend on it", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const received = new Map<string, number>(); // event id -> successful deliveries
    let calls = 0;
    const hook = "https://hooks.example/receiver";
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input: RequestInfo | URL, init?: RequestInit) => {
      const url = input instanceof Request ? input.url : String(input);
      if (!url.startsWith(hook)) throw new Error(`unexpected fetch ${url}`);
      calls++;
      // Down for the first five calls (503s, then a network error), up after.
      if (calls <= 4) return new Response("down", { status: 503 });
      if (calls === 5) throw new TypeError("connection refused");
      const id = new Headers(init?.headers).get("x-webhook-id") ?? "?";
      received.set(id, (received.get(id) ?? 0) + 1);
      return new Response("ok", { status: 200 });
    });
    try {
      const created = await callJson("/api/batch/scrape", {
        method: "POST",
        headers: keyHeaders(apiKey),
        body: JSON.stringify({
          urls: ["https://example.com/1", "https://example.com/2", "https://example.com/3"],
          webhookUrl: hook,
        }),
      });
      expect(created.status).toBe(202);
      const batchId: string = created.body.batchId;
      const found = await batchStub(batchId).get(accountId, -1, 10);
      if (!found.ok) throw new Error(found.message);
      const [x, y] = await startItems(
        batchId,
        found.items.slice(0, 2).map((i) => i.uuid),
      );
      // The batch's deliveries to the account fail too, once with the reply lost: events arrive twice.
      await breakOutbox(batchId, 2, true);
      await batchStub(batchId).completeItem(x!.itemId, x!.attempt, {});
      await batchStub(batchId).failItem(y!.itemId, y!.attempt, { code: "HTTP_404", message: "gone" });
      await cancelBatch(apiKey, batchId);
      await drainOutbox(batchId);

      // The account's alarm delivers what is due; time passes between attempts.
      const deliverDue = () =>
        runInDurableObject(accountStub(accountId), async (o: AccountObject, state) => {
          state.storage.sql.exec(
            "UPDATE webhook_deliveries SET next_attempt_at = ? WHERE state = 'pending'",
            Date.now() - 1,
          );
          await o.alarm();
        });
      for (let k = 0; k < 12 && received.size < 4; k++) await deliverDue();
      count("faults", 5);
      const listed = await callJson("/api/webhooks/deliveries", { headers: keyHeaders(apiKey) });
      const deliveries: { eventId: string; type: string; state: string }[] = listed.body.deliveries;
      expect(deliveries.map((d) => d.type).sort()).toEqual([
        "batch.cancelled",
        "batch.started",
        "item.completed",
        "item.failed",
      ]);
      expect(deliveries.every((d) => d.state === "delivered")).toBe(true);
      expect([...received.keys()].sort()).toEqual(deliveries.map((d) => d.eventId).sort());
      expect([...received.values()]).toEqual([1, 1, 1, 1]);
      expect(calls).toBe(9); // 5 failed attempts, then each of the 4 events once
      // Nothing is sent again once delivered.
      const before = calls;
      await deliverDue();
      expect(calls).toBe(before);
      const { credits } = await expectBooksClosed(apiKey, accountId, [batchId]);
      expect(credits).toMatchObject({ balance: 98, reserved: 0, used: 2, refunded: 4 });
    } finally {
      vi.restoreAllMocks();
    }
  });
});

describe("a batch object reset while a retry waits for the account", () => {
  // Found by this suite. The retry writes a `reserving` hold, then awaits the account. If the
  // object is reset (deploy, crash, CPU limit) before the reservation reaches the account,
  // nothing ever resolves that hold: the account has no hold to ask about, no alarm is
  // armed, and every later retry answers 409 RETRY_IN_PROGRESS, for ever.
  it("once the reservation timeout has passed, the failed items can be retried again", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 2);
    const [lease] = await startItems(batchId, itemIds.slice(0, 1));
    expect(
      await batchStub(batchId).failItem(lease!.itemId, lease!.attempt, { code: "HTTP_404", message: "gone" }),
    ).toEqual({ ok: true, outcome: "settled" });
    let release!: () => void;
    const stalled = new Promise<void>((resolve) => (release = resolve));
    await interceptReserveHold(batchId, (reserveHold) => async (input) => {
      await stalled; // the call never leaves before the reset
      return reserveHold(input);
    });
    const first = retryBatch(apiKey, batchId);
    await sleep(50);
    count("faults");
    await abortAllDurableObjects();
    release();
    expect((await first).status).toBeGreaterThanOrEqual(500); // the request died with the object

    // Time passes beyond the reservation timeout; both objects' alarms run.
    await runInBatch(batchId, async (o, state) => {
      state.storage.sql.exec("UPDATE holds SET created_at = created_at - 600000");
      await o.alarm();
    });
    await runDurableObjectAlarm(accountStub(accountId));
    const again = await retryBatch(apiKey, batchId);
    expect({ status: again.status, body: again.body }).toMatchObject({
      status: 202,
      body: { status: "queued", retriedCount: 1 },
    });
    const { credits } = await expectBooksClosed(apiKey, accountId, [batchId]);
    expect(credits).toMatchObject({ balance: 96, reserved: 4, used: 0 });
  });
});
