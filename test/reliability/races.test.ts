/**
 * Race storms: many requests at the same moment against one batch or one account. Each
 * race must have exactly one winner, and the books must close exactly afterwards.
 * Rounds grow with RELIABILITY_RUNS.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ERROR_STATUS } from "../../src/domain/errors";
import { createApp } from "../../src/http/app";
import { adminHeaders, batchStub, callJson, createBatch, keyHeaders, newAccount, newBatch, urls } from "../helpers";
import { count, reportFigures } from "./figures";
import { rounds, timeLimit } from "./runs";
import { cancelBatch, completeAll, expectBooksClosed, failAll, retryBatch, sleep, startItems } from "./support";

reportFigures("races");

const STORM = 250;

describe("cancel against a storm of startItem calls", () => {
  it(
    `${rounds(3)} rounds: cancel in the middle of ${STORM} concurrent starts; nothing starts after it, each item ends in one state`,
    async () => {
      const { apiKey, accountId } = await newAccount(rounds(3) * STORM * 2);
      const batchIds: string[] = [];
      for (let round = 0; round < rounds(3); round++) {
        const { batchId, itemIds } = await newBatch(apiKey, STORM);
        batchIds.push(batchId);
        const stub = batchStub(batchId);
        // Starts spread over a few milliseconds; the cancel goes out at a random moment among them.
        const cancelAfter = Math.floor(Math.random() * 8);
        const starts = itemIds.map(async (id, k) => {
          await sleep(k % 10);
          const r = await stub.startItem(id);
          return r;
        });
        const cancel = sleep(cancelAfter).then(() => cancelBatch(apiKey, batchId));
        const [res, ...results] = await Promise.all([cancel, ...starts]);
        count("races", STORM + 1);

        expect(res.status).toBe(200);
        const ran = results.flatMap((r) => (r.action === "run" ? [{ itemId: r.itemId, attempt: r.attempt }] : []));
        const dropped = results.filter((r) => r.action === "drop");
        for (const d of dropped) expect(d).toEqual({ action: "drop", reason: "BATCH_CANCELLED" });
        expect(res.body).toEqual({
          status: "cancelled",
          cancelledItems: dropped.length,
          creditsRefunded: dropped.length * 2,
        });
        // Starts after the cancel, of items that ran and items that did not: all dropped.
        for (const id of itemIds.slice(0, 20)) expect(await stub.startItem(id)).toMatchObject({ action: "drop" });

        await completeAll(batchId, ran);
        const b = (await callJson(`/api/batch/scrape/${batchId}`, { headers: keyHeaders(apiKey) })).body;
        expect(b).toMatchObject({
          status: "cancelled",
          completedCount: ran.length,
          cancelledCount: dropped.length,
          pendingCount: 0,
          runningCount: 0,
        });
        const { ledger } = await expectBooksClosed(apiKey, accountId, batchIds);
        expect(ledger.filter((e) => e.kind === "refund" && e.batchId === batchId)).toHaveLength(
          dropped.length > 0 ? 1 : 0,
        );
      }
    },
    timeLimit(60_000),
  );
});

describe("cancel against cancel", () => {
  it(
    `${rounds(5)} rounds: 2 to 6 cancels at once while items run: exactly one 200, the rest 409, one refund`,
    async () => {
      const { apiKey, accountId } = await newAccount(rounds(5) * 20);
      const batchIds: string[] = [];
      for (let round = 0; round < rounds(5); round++) {
        const { batchId, itemIds } = await newBatch(apiKey, 10);
        batchIds.push(batchId);
        const running = await startItems(batchId, itemIds.slice(0, round % 4));
        const n = 2 + (round % 5);
        const results = await Promise.all(Array.from({ length: n }, () => cancelBatch(apiKey, batchId)));
        count("races", n);
        const ok = results.filter((r) => r.status === 200);
        expect(ok).toHaveLength(1);
        expect(ok[0]!.body).toEqual({
          status: "cancelled",
          cancelledItems: 10 - running.length,
          creditsRefunded: (10 - running.length) * 2,
        });
        for (const r of results.filter((x) => x.status !== 200)) {
          expect({ status: r.status, body: r.body }).toMatchObject({
            status: 409,
            body: {
              status: "error",
              code: "ALREADY_TERMINAL",
              message: "Cannot cancel a batch that is already cancelled.",
            },
          });
        }
        await completeAll(batchId, running);
        const { ledger } = await expectBooksClosed(apiKey, accountId, batchIds);
        expect(ledger.filter((e) => e.kind === "refund" && e.batchId === batchId)).toHaveLength(1);
      }
    },
    timeLimit(60_000),
  );
});

describe("cancel against retry, retry against retry", () => {
  it(
    `${rounds(6)} rounds: cancel and retry at once end in one of the allowed orders, and no credit is held or lost`,
    async () => {
      const opening = 1000;
      const { apiKey, accountId } = await newAccount(opening);
      const batchIds: string[] = [];
      const seen = new Set<string>();
      for (let round = 0; round < rounds(6); round++) {
        const { batchId, itemIds } = await newBatch(apiKey, 6);
        batchIds.push(batchId);
        await failAll(batchId, await startItems(batchId, itemIds.slice(0, 3)));
        const retryFirst = round % 2 === 0;
        const [retry, cancel] = await Promise.all([
          sleep(retryFirst ? 0 : 1).then(() => retryBatch(apiKey, batchId)),
          sleep(retryFirst ? 1 : 0).then(() => cancelBatch(apiKey, batchId)),
        ]);
        count("races", 2);
        expect(cancel.status).toBe(200);
        if (retry.status === 202) {
          // The retry won: its 3 items were pending again when the cancel came.
          expect(retry.body).toEqual({ status: "queued", retriedCount: 3 });
          expect(cancel.body).toEqual({ status: "cancelled", cancelledItems: 6, creditsRefunded: 12 });
          seen.add("retry, then cancel");
        } else {
          // The cancel won, before the retry looked or while it waited for the account.
          expect({ status: retry.status, code: retry.body.code }).toEqual({ status: 409, code: "BATCH_CANCELLED" });
          expect(cancel.body).toEqual({ status: "cancelled", cancelledItems: 3, creditsRefunded: 6 });
          seen.add("cancel, then retry refused");
        }
        const { credits } = await expectBooksClosed(apiKey, accountId, batchIds);
        // Nothing completed: every credit reserved came back.
        expect(credits).toMatchObject({ balance: opening, reserved: 0, used: 0 });
      }
      // Each order must have happened: a test that only ever saw one could not tell a race from a rule.
      expect([...seen].sort()).toEqual(["cancel, then retry refused", "retry, then cancel"]);
    },
    timeLimit(60_000),
  );

  it(
    `${rounds(4)} rounds: 2 to 5 retries at once: one 202, the others refused, the failed items reserved once`,
    async () => {
      const { apiKey, accountId } = await newAccount(1000);
      const batchIds: string[] = [];
      for (let round = 0; round < rounds(4); round++) {
        const { batchId, itemIds } = await newBatch(apiKey, 4);
        batchIds.push(batchId);
        await failAll(batchId, await startItems(batchId, itemIds.slice(0, 2)));
        const n = 2 + (round % 4);
        const results = await Promise.all(Array.from({ length: n }, () => retryBatch(apiKey, batchId)));
        count("races", n);
        expect(results.filter((r) => r.status === 202).map((r) => r.body)).toEqual([
          { status: "queued", retriedCount: 2 },
        ]);
        for (const r of results.filter((x) => x.status !== 202)) {
          expect([
            { status: 409, code: "RETRY_IN_PROGRESS" },
            { status: 400, code: "NO_FAILED_ITEMS" },
          ]).toContainEqual({ status: r.status, code: r.body.code });
        }
        const { ledger } = await expectBooksClosed(apiKey, accountId, batchIds);
        expect(
          ledger
            .filter((e) => e.kind === "reserve" && e.batchId === batchId)
            .map((e) => e.amount)
            .sort(),
        ).toEqual([4, 8]);
      }
    },
    timeLimit(60_000),
  );
});

describe("the same Idempotency-Key at once", () => {
  it(
    `${rounds(3)} rounds: 20 identical creates at once make one batch and one reservation`,
    async () => {
      const { apiKey, accountId } = await newAccount(1000);
      const batchIds: string[] = [];
      for (let round = 0; round < rounds(3); round++) {
        const key = `storm-${round}-${crypto.randomUUID()}`;
        const body = { urls: urls(3, `https://example.com/idem${round}`) };
        const results = await Promise.all(
          Array.from({ length: 20 }, () => createBatch(apiKey, body, { "idempotency-key": key })),
        );
        count("races", 20);
        const ids = new Set(results.map((r) => r.body.batchId));
        expect(results.map((r) => r.status)).toEqual(Array(20).fill(202));
        expect(ids.size).toBe(1);
        const [batchId] = [...ids] as [string];
        batchIds.push(batchId);
        const { ledger } = await expectBooksClosed(apiKey, accountId, batchIds);
        expect(ledger.filter((e) => e.kind === "reserve" && e.batchId === batchId)).toHaveLength(1);
      }
      const list = await callJson("/api/batch/scrape?limit=50", { headers: keyHeaders(apiKey) });
      expect(list.body.pagination.total).toBe(rounds(3));
    },
    timeLimit(60_000),
  );

  it(
    `${rounds(3)} rounds: one key, two bodies, 20 requests at once: one body wins everywhere, the other gets 422`,
    async () => {
      const { apiKey, accountId } = await newAccount(1000);
      const batchIds: string[] = [];
      for (let round = 0; round < rounds(3); round++) {
        const key = `split-${round}-${crypto.randomUUID()}`;
        const bodies = [{ urls: urls(2, "https://example.com/a") }, { urls: urls(2, "https://example.com/b") }];
        const results = await Promise.all(
          Array.from({ length: 20 }, (_, k) =>
            createBatch(apiKey, bodies[k % 2], { "idempotency-key": key }).then((r) => ({ k, r })),
          ),
        );
        count("races", 20);
        const winners = results.filter(({ r }) => r.status === 202);
        const losers = results.filter(({ r }) => r.status !== 202);
        const winningBody = winners[0]!.k % 2;
        expect(winners.every(({ k }) => k % 2 === winningBody)).toBe(true);
        expect(new Set(winners.map(({ r }) => r.body.batchId)).size).toBe(1);
        expect(losers).toHaveLength(10);
        for (const { r } of losers)
          expect({ status: r.status, code: r.body.code }).toEqual({ status: 422, code: "IDEMPOTENCY_KEY_REUSED" });
        batchIds.push(winners[0]!.r.body.batchId);
        await expectBooksClosed(apiKey, accountId, batchIds);
      }
    },
    timeLimit(60_000),
  );
});

describe("credit grants racing reservations", () => {
  it(
    `${rounds(2)} rounds: grants (some sent twice) interleaved with creates: each create fits or is refused, final balances exact`,
    async () => {
      for (let round = 0; round < rounds(2); round++) {
        const { apiKey, accountId } = await newAccount(0);
        const grants = Array.from({ length: 12 }, (_, k) => ({ key: `g-${round}-${k}`, amount: 10 }));
        // Every fourth grant is sent twice at once: its Idempotency-Key makes the second a replay.
        const sends = grants.flatMap((g, k) => (k % 4 === 0 ? [g, g] : [g]));
        const grantCalls = sends.map(async (g, k) => {
          await sleep(k % 7);
          return callJson(`/admin/accounts/${accountId}/credits`, {
            method: "POST",
            headers: { ...adminHeaders, "idempotency-key": g.key },
            body: JSON.stringify({ amount: g.amount }),
          });
        });
        const createCalls = Array.from({ length: 40 }, async (_, k) => {
          await sleep(k % 9);
          return createBatch(apiKey, { urls: urls(2, `https://example.com/g${round}/${k}`) });
        });
        const [granted, created] = await Promise.all([Promise.all(grantCalls), Promise.all(createCalls)]);
        count("races", sends.length + createCalls.length);
        expect(granted.every((r) => r.status === 200)).toBe(true);
        const accepted = created.filter((r) => r.status === 202);
        for (const r of created.filter((x) => x.status !== 202))
          expect({ status: r.status, code: r.body.code }).toEqual({ status: 403, code: "INSUFFICIENT_CREDITS" });
        const { credits, ledger } = await expectBooksClosed(
          apiKey,
          accountId,
          accepted.map((r) => r.body.batchId),
        );
        expect(credits).toMatchObject({
          granted: 120,
          reserved: accepted.length * 4,
          balance: 120 - accepted.length * 4,
          used: 0,
        });
        expect(ledger.filter((e) => e.kind === "grant")).toHaveLength(12);
        // 120 credits buy at most 30 batches of 4.
        expect(accepted.length).toBeLessThanOrEqual(30);
      }
    },
    timeLimit(60_000),
  );
});

describe("creates racing for the last place under the cap on active batches", () => {
  it(
    `${rounds(3)} rounds: 12 creates at once for the last free place: exactly one wins, the others reserve nothing`,
    async (ctx) => {
      if (!("TOO_MANY_ACTIVE_BATCHES" in ERROR_STATUS)) ctx.skip(); // the cap is new: runs once its code exists
      for (let round = 0; round < rounds(3); round++) {
        const { apiKey, accountId } = await newAccount(1000);
        const app = createApp();
        const capped = { ...env, MAX_ACTIVE_BATCHES: "4" };
        const create = async (k: number) => {
          const res = await app.request(
            "/api/batch/scrape",
            {
              method: "POST",
              headers: keyHeaders(apiKey),
              body: JSON.stringify({ urls: urls(2, `https://example.com/cap${k}`) }),
            },
            capped,
          );
          return { status: res.status, body: await res.json<{ batchId?: string; code?: string }>() };
        };
        const first = [await create(0), await create(1), await create(2)];
        expect(first.map((r) => r.status)).toEqual([202, 202, 202]);
        const results = await Promise.all(
          Array.from({ length: 12 }, (_, k) => sleep(k % 3).then(() => create(10 + k))),
        );
        count("races", 12);
        const won = results.filter((r) => r.status === 202);
        expect(won).toHaveLength(1);
        for (const r of results.filter((x) => x.status !== 202))
          expect({ status: r.status, code: r.body.code }).toEqual({ status: 429, code: "TOO_MANY_ACTIVE_BATCHES" });
        const ids = [...first, ...won].map((r) => r.body.batchId!);
        const { credits, ledger } = await expectBooksClosed(apiKey, accountId, ids);
        expect(credits).toMatchObject({ reserved: 16, balance: 984 });
        expect(ledger.filter((e) => e.kind === "reserve")).toHaveLength(4);
      }
    },
    timeLimit(60_000),
  );
});

describe("cancel-all racing", () => {
  function cancelAll(apiKey: string) {
    return callJson("/api/batch/scrape/cancel-all", { method: "POST", headers: keyHeaders(apiKey) });
  }

  it(
    "two cancel-alls at once, against item starts on 3 batches: each batch cancelled once, nothing starts after",
    async () => {
      for (let round = 0; round < rounds(2); round++) {
        const { apiKey, accountId } = await newAccount(1000);
        const batches = [await newBatch(apiKey, 20), await newBatch(apiKey, 20), await newBatch(apiKey, 20)];
        const starts = batches.flatMap(({ batchId, itemIds }) =>
          itemIds.map(async (id, k) => {
            await sleep(k % 6);
            const r = await batchStub(batchId).startItem(id);
            return { batchId, r };
          }),
        );
        const [a, b, ...results] = await Promise.all([
          cancelAll(apiKey),
          sleep(1).then(() => cancelAll(apiKey)),
          ...starts,
        ]);
        count("races", 2 + starts.length);
        expect([a.status, b.status]).toEqual([200, 200]);
        expect(a.body.batchesCancelled + b.body.batchesCancelled).toBe(3);
        for (const { r } of results) if (r.action === "drop") expect(r.reason).toBe("BATCH_CANCELLED");
        const ran = results.flatMap(({ batchId, r }) =>
          r.action === "run" ? [{ batchId, itemId: r.itemId, attempt: r.attempt }] : [],
        );
        expect(a.body.cancelledItems + b.body.cancelledItems).toBe(60 - ran.length);
        for (const l of ran) await completeAll(l.batchId, [l]);
        const { ledger } = await expectBooksClosed(
          apiKey,
          accountId,
          batches.map((x) => x.batchId),
        );
        for (const { batchId } of batches)
          expect(ledger.filter((e) => e.kind === "refund" && e.batchId === batchId).length).toBeLessThanOrEqual(1);
      }
    },
    timeLimit(60_000),
  );
});
