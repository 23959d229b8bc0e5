/**
 * The account-wide concurrency cap as the account's second hot path: what one slot
 * release costs the account when many batches of the account wait for slots.
 * - Rows read by one slot claim (a "slots" event) with 50 and with 1,000 batches in the
 *   account, beside the rows a claim must touch (its own row).
 * - Batches woken (pump RPCs from the account's alarm) when one batch cancels and frees
 *   its slots, beside the slots it freed; and by an alarm that frees nothing.
 * Counts, not times: they hold on any machine.
 */
import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { AccountObject } from "../src/account/account-object";
import type { Env } from "../src/env";
import type { BenchRow } from "./result";
import { row } from "./result";
import { accountStub, batchStub, createBatchRpc, newAccount, probeSql, sqlOf, urls } from "./support";

/** Waiting batches beyond the cap (cap 50 slots = 10 batches of 5). */
const BATCHES = 40;

/** Counts the account's pump calls by wrapping its BATCH binding (the object reads this.env.BATCH each time). */
async function countWakeups(accountId: string): Promise<{ pumps: number }> {
  const counts = { pumps: 0 };
  await runInDurableObject(accountStub(accountId), (o: AccountObject) => {
    const env = Reflect.get(o, "env") as Env;
    const batch = env.BATCH;
    const wrapped = {
      getByName: (name: string) =>
        new Proxy(batch.getByName(name), {
          get(target, prop) {
            if (prop !== "pump") return Reflect.get(target, prop);
            return () => {
              counts.pumps++;
              return target.pump();
            };
          },
        }),
    };
    Reflect.set(o, "env", new Proxy(env, { get: (t, p) => (p === "BATCH" ? wrapped : Reflect.get(t, p)) }));
  });
  return counts;
}

async function claimRowsRead(accountId: string, batchId: string, version: number): Promise<number> {
  return runInDurableObject(accountStub(accountId), async (o: AccountObject) => {
    const probed = await probeSql(sqlOf(o), () => o.applyBatchEvents(batchId, [{ kind: "slots", version, wanted: 1 }]));
    return probed.sql.rowsRead;
  });
}

describe("the account's slot cap under many waiting batches", () => {
  it("slot claims scan the account's batches; one release wakes up to 20 batches", async ({ task }) => {
    const { accountId } = await newAccount();
    const account = accountStub(accountId);
    const batchIds: string[] = [];
    for (let i = 0; i < BATCHES; i++) batchIds.push((await createBatchRpc(accountId, urls(10))).batchId);
    const usage = await account.slotUsage();
    const holding = usage.batches.filter((b) => b.granted > 0).map((b) => b.batchId);
    const waiting = usage.batches.filter((b) => b.granted < b.wanted).length;
    expect(holding.length).toBeGreaterThan(0);

    // One holding batch cancels: it gives its slots back through its outbox; the account's alarm wakes waiting batches.
    const wakeups = await countWakeups(accountId);
    const freed = usage.batches.find((b) => b.batchId === holding[0])!.granted;
    const cancelled = await batchStub(holding[0]!).cancel(accountId);
    expect(cancelled.ok).toBe(true);
    await runDurableObjectAlarm(account);
    const afterCancel = wakeups.pumps;

    // An alarm with nothing freed (holds and retention arm it too): how many batches does it wake?
    await runInDurableObject(account, (_o: AccountObject, s) => s.storage.setAlarm(Date.now()));
    await runDurableObjectAlarm(account);
    const idleAlarm = wakeups.pumps - afterCancel;

    // Rows one claim reads, with 40 batches and with 1,000 reservations in the account.
    const small = await claimRowsRead(accountId, batchIds[1]!, 1_000);
    const batchesSmall = (await account.slotUsage()).batches.length;
    for (let i = 0; i < 960; i++) {
      const r = await account.reserveBatch({
        output: "json",
        total: 1,
        amount: 2,
        wantedSlots: 1,
        maxActiveBatches: 1_000_000,
        idempotencyKey: null,
        requestHash: null,
      });
      if (!r.ok) throw new Error(r.message);
    }
    const big = await claimRowsRead(accountId, batchIds[2]!, 1_000);
    const batchesBig = (await account.slotUsage()).batches.length;

    const rows: BenchRow[] = [
      row({
        section: "account",
        what: "batches woken after one batch frees its slots",
        value: afterCancel,
        unit: "pumps",
        baseline: "slots freed",
        baselineValue: freed,
        note: `${waiting} batches waiting; each pump is a claimSlots RPC back when dispatch runs`,
      }),
      row({
        section: "account",
        what: "batches woken by an alarm that freed nothing",
        value: idleAlarm,
        unit: "pumps",
        baseline: "batches waiting",
        baselineValue: waiting,
      }),
      row({
        section: "account",
        what: `rows read by one slot claim, ${batchesBig} batches`,
        value: big,
        unit: "rows",
        baseline: `same, ${batchesSmall} batches`,
        baselineValue: small,
        note: "flat when it reads only batches that hold or wait for slots",
      }),
    ];
    task.meta.bench = {
      rows,
      details: {
        holding: holding.length,
        waiting,
        freed,
        afterCancel,
        idleAlarm,
        claimRowsRead: { [batchesSmall]: small, [batchesBig]: big },
      },
    };
  });
});
