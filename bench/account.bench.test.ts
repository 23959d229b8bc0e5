/**
 * The account object as a hot spot: many batches of one account settling at once. Every
 * batch's outbox sends its consumes to the one account object; the bench plays those
 * outboxes (the same applyBatchEvents calls, with real holds and keys) so the account is
 * all that is measured:
 * - batched: each batch sends its K settlements in one call (an outbox with a backlog);
 * - one per call: each settlement in its own call (an outbox delivered after every
 *   completion, which is what a lightly loaded batch does);
 * - authenticate: the key check every API request makes on the account object first.
 * Beside a bare object taking one single-row UPDATE per RPC from as many callers, and,
 * inside the object, beside a bare loop inserting the same ledger rows.
 */
import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { AccountObject } from "../src/account/account-object";
import { sha256Hex } from "../src/account/keys";
import type { AccountEvent } from "../src/domain/account-events";
import type { BenchRow } from "./result";
import { row } from "./result";
import { accountStub, bare, bareRpcMs, ledgerRows, newAccount, pool, sandwich, timed } from "./support";

/** Batches settling at once (the default account-wide cap is 50 running items). */
const BATCHES = 50;
/** Settlements per batch per round. */
const PER_BATCH = 20;
const REPS = 3;
const IN_OBJECT_EVENTS = 500;

describe("the account object as a hot spot", () => {
  it("many batches of one account settling at once: ledger writes per second", async ({ task }) => {
    const { accountId, apiKey } = await newAccount();
    const account = accountStub(accountId);
    // Enough reserved per batch for every round of every mode.
    const itemsPerBatch = PER_BATCH * 2 * REPS + IN_OBJECT_EVENTS * REPS;
    const batchIds: string[] = [];
    for (let b = 0; b < BATCHES; b++) {
      const r = await account.reserveBatch({
        output: "json",
        total: itemsPerBatch,
        amount: 2 * itemsPerBatch,
        wantedSlots: 1,
        maxActiveBatches: 1_000_000,
        idempotencyKey: null,
        requestHash: null,
      });
      if (!r.ok) throw new Error(r.message);
      batchIds.push(r.batchId);
    }
    let seq = 0;
    const consume = (batchId: string): AccountEvent => {
      const itemId = `item-${seq++}`;
      return { kind: "consume", key: `${batchId}:${itemId}:r1:consume`, amount: 2, itemId };
    };
    let version = 1;
    const total = BATCHES * PER_BATCH;
    const rate = (n: number, ms: number) => (n / ms) * 1000;
    const counter = await bare("counter");
    const [, keyId] = /^bsk_[0-9a-f]{32}_([0-9a-f]{16})_/.exec(apiKey) ?? [];
    const keyHash = await sha256Hex(apiKey);

    const result = await sandwich(REPS, async () => rate(total, await bareRpcMs(counter, total, BATCHES)), {
      batched: async () => {
        version++;
        const t = await timed(() =>
          Promise.all(
            batchIds.map(async (batchId) => {
              const events: AccountEvent[] = Array.from({ length: PER_BATCH }, () => consume(batchId));
              events.push({
                kind: "status",
                version,
                snapshot: { status: "running", completed: PER_BATCH, failed: 0, cancelled: 0, finishedAt: null },
              });
              const applied = await account.applyBatchEvents(batchId, events);
              if (!applied.ok) throw new Error(applied.message);
            }),
          ),
        );
        return rate(total, t.ms);
      },
      onePerCall: async () => {
        const t = await timed(() =>
          Promise.all(
            batchIds.map(async (batchId) => {
              for (let i = 0; i < PER_BATCH; i++) {
                const applied = await account.applyBatchEvents(batchId, [consume(batchId)]);
                if (!applied.ok) throw new Error(applied.message);
              }
            }),
          ),
        );
        return rate(total, t.ms);
      },
      authenticate: async () =>
        rate(
          total,
          await pool(total, BATCHES, async () => {
            if (!(await account.authenticate(keyId!, keyHash))) throw new Error("key refused");
          }),
        ),
    });
    expect(await ledgerRows(accountId, "consume")).toBe(2 * REPS * total);

    // Inside the object: one call of IN_OBJECT_EVENTS settlements, beside a bare loop writing as many ledger rows.
    const inObject = await sandwich(
      REPS,
      async () =>
        rate(IN_OBJECT_EVENTS, (await (await bare("account")).insertLedger(IN_OBJECT_EVENTS, crypto.randomUUID())).ms),
      {
        apply: async () => {
          const batchId = batchIds[0]!;
          const events = Array.from({ length: IN_OBJECT_EVENTS }, () => consume(batchId));
          const ms = await runInDurableObject(account, (o: AccountObject) => {
            const t0 = performance.now();
            const applied = o.applyBatchEvents(batchId, events);
            if (!applied.ok) throw new Error(applied.message);
            return performance.now() - t0;
          });
          return rate(events.length, ms);
        },
      },
    );

    // Storage the append-only ledger takes per row (the 10 GB per object limit), beside a bare ledger.
    const ledger = await runInDurableObject(account, (_o: AccountObject, s) => ({
      bytes: s.storage.sql.databaseSize,
      rows: s.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM ledger").one().n,
    }));
    const bareLedger = await bare("account");
    const emptyBytes = await bareLedger.databaseSize();
    await bareLedger.insertLedger(ledger.rows, batchIds[0]!);
    const bareBytesPerRow = ((await bareLedger.databaseSize()) - emptyBytes) / ledger.rows;

    const base = `bare 1-row UPDATE RPCs/s, ${BATCHES} callers`;
    const rows: BenchRow[] = [
      row({
        section: "account",
        what: `ledger writes/s, ${BATCHES} batches x ${PER_BATCH} per call`,
        value: result.subjects.batched.value,
        unit: "writes/s",
        baseline: base,
        baselineValue: result.baseline,
        ratio: result.subjects.batched.ratio,
      }),
      row({
        section: "account",
        what: `ledger writes/s, ${BATCHES} batches, 1 per call`,
        value: result.subjects.onePerCall.value,
        unit: "writes/s",
        baseline: base,
        baselineValue: result.baseline,
        ratio: result.subjects.onePerCall.ratio,
      }),
      row({
        section: "account",
        what: `authenticate/s, ${BATCHES} callers`,
        value: result.subjects.authenticate.value,
        unit: "calls/s",
        baseline: base,
        baselineValue: result.baseline,
        ratio: result.subjects.authenticate.ratio,
        note: "every API request makes one",
      }),
      row({
        section: "account",
        what: "account bytes per ledger row",
        value: ledger.bytes / ledger.rows,
        unit: "bytes",
        baseline: "bare ledger bytes per row",
        baselineValue: bareBytesPerRow,
        note: `${ledger.rows} rows; 10 GB per object = ${Math.round(10e9 / (ledger.bytes / ledger.rows) / 1e6)}M rows`,
      }),
      row({
        section: "account",
        what: "ledger writes/s inside the object",
        value: inObject.subjects.apply.value,
        unit: "writes/s",
        baseline: "bare ledger INSERTs/s in a loop",
        baselineValue: inObject.baseline,
        ratio: inObject.subjects.apply.ratio,
      }),
    ];
    task.meta.bench = {
      rows,
      details: { batches: BATCHES, perBatch: PER_BATCH, result, inObject, ledger, bareBytesPerRow },
    };
  });
});
