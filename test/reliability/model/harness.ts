/**
 * Runs model commands against the real objects in workerd (HTTP for create, cancel,
 * retry and grants; RPC stubs for the executor contract; runInDurableObject for faults)
 * and against the reference model, asserting that both answer the same, then checks the
 * invariants after every step.
 */
import { evictDurableObject, runDurableObjectAlarm } from "cloudflare:test";
import { expect } from "vitest";
import {
  accountStub,
  adminHeaders,
  batchStub,
  callJson,
  drainOutbox,
  keyHeaders,
  newAccount,
  resetObject,
  runInBatch,
} from "../../helpers";
import { count } from "../figures";
import { readLedger } from "../ledger";
import { sleep } from "../support";
import type { SettleReport } from "../../../src/domain/executor-contract";
import type { Cmd, GroupReport, ResetDuring } from "./commands";
import { breakNextReservation, breakOutbox, healOutbox } from "./faults";
import { countsOf, type MBatch, type MItem, Model } from "./model";
import { SETTLEMENT_WINDOW_MS } from "../../../src/domain/next-alarm";

/** More batches only make each check slower; sequences still reach every state with 4. */
const MAX_BATCHES = 4;
/**
 * A cancel's sweep rewrites this many item rows per alarm run here (production: 2,000), so
 * a batch of 1-4 items is swept in several steps and every command can land mid-sweep.
 */
const SWEEP_CHUNK = 1;

/** Set on an instance before a reset: a fresh instance (the reset happened) does not have it. */
const RESET_MARK = "modelResetMark";

/** Sweeps in small chunks from now on (a field of the instance: set again after an eviction). */
function smallSweeps(batchId: string): Promise<void> {
  return runInBatch(batchId, (o) => {
    o.sweepChunkRows = SWEEP_CHUNK;
  });
}

/** The error an executor reports: transient, permanent, or (charged) an extraction limit. */
function failure(retryable: boolean, charged: boolean): { code: string; message: string } {
  if (charged)
    return {
      code: "EXTRACTION_LIMIT",
      message: "Extraction stopped: the page has more than 100000 elements (EXTRACT_MAX_ELEMENTS = 100000).",
    };
  return retryable ? { code: "HTTP_503", message: "unavailable" } : { code: "HTTP_404", message: "gone" };
}

export class Harness {
  private creates = 0;
  /** Batches whose deliveries to the account fail until healed or evicted. */
  private readonly down = new Set<string>();

  private constructor(
    readonly model: Model,
    readonly accountId: string,
    readonly apiKey: string,
  ) {}

  static async open(credits: number): Promise<Harness> {
    const { accountId, apiKey } = await newAccount(credits, "model");
    return new Harness(new Model(accountId, credits), accountId, apiKey);
  }

  /**
   * Runs a whole sequence, checking after every step; a failure names the step. `alsoCheck`
   * runs after the invariants (every outbox not faulted has drained by then).
   */
  static async play(cmds: Cmd[], credits = 30, alsoCheck?: (h: Harness) => Promise<void>): Promise<void> {
    const h = await Harness.open(credits);
    count("sequences");
    for (const [n, cmd] of cmds.entries()) {
      try {
        await h.run(cmd);
        await h.check();
        await alsoCheck?.(h);
      } catch (err) {
        if (err instanceof Error) err.message = `step ${n} ${JSON.stringify(cmd)}: ${err.message}`;
        throw err;
      }
    }
    await h.heal();
    await h.check();
    await h.settleStorage();
  }

  // ---- commands -------------------------------------------------------------------------------

  async run(cmd: Cmd): Promise<void> {
    count("commands");
    switch (cmd.kind) {
      case "create":
        return this.create(cmd.n, cmd.markdown, cmd.idem);
      case "replayCreate":
        return this.replayCreate(cmd.b);
      case "grant":
        return this.grant(cmd.amount, cmd.replay);
      case "start":
        return this.onItem(cmd, (b, item) => this.start(b, item, cmd.token));
      case "redispatch":
        return this.onItem(cmd, (b, item) => this.redispatch(b, item));
      case "complete":
        return this.onItem(cmd, (b, item) => this.settle(b, item, cmd.older, "completed", false));
      case "fail":
        return this.onItem(cmd, (b, item) => this.settle(b, item, cmd.older, "failed", cmd.retryable));
      case "failCharged":
        return this.onItem(cmd, (b, item) => this.settle(b, item, cmd.older, "failed", cmd.retryable, true));
      case "repeatSettle":
        return this.onItem(cmd, (b, item) => this.repeatSettle(b, item));
      case "startGroup":
        return this.onBatch(cmd.b, (b) => this.startGroup(b, cmd.is));
      case "settleGroup":
        return this.onBatch(cmd.b, (b) => this.settleGroup(b, cmd.reports));
      case "cancel":
        return this.onBatch(cmd.b, (b) => this.cancel(b));
      case "raceCancel":
        return this.onBatch(cmd.b, (b) => this.raceCancel(b));
      case "retry":
        return this.onBatch(cmd.b, (b) => this.retry(b, cmd.fault));
      case "expireLeases":
        return this.onBatch(cmd.b, (b) => this.expireLeases(b));
      case "outboxFault":
        return this.onBatch(cmd.b, (b) => this.breakOutbox(b, cmd.failures, cmd.replyLost));
      case "outboxHeal":
        return this.onBatch(cmd.b, (b) => this.healOutbox(b));
      case "evict":
        if (cmd.account) {
          count("faults");
          return evictDurableObject(accountStub(this.accountId));
        }
        return this.onBatch(cmd.b, async (b) => {
          count("faults");
          await evictDurableObject(batchStub(b.id));
          this.down.delete(b.id);
          await smallSweeps(b.id);
        });
      case "alarm":
        return this.onBatch(cmd.b, (b) => this.alarm(b));
      case "reset":
        return this.onBatch(cmd.b, (b) => this.reset(b, cmd.i, cmd.account, cmd.during));
    }
  }

  private async onBatch(index: number, fn: (b: MBatch) => Promise<void>): Promise<void> {
    const b = this.model.batches[index % Math.max(1, this.model.batches.length)];
    if (b) await fn(b);
  }

  private async onItem(cmd: { b: number; i: number }, fn: (b: MBatch, item: MItem) => Promise<void>): Promise<void> {
    await this.onBatch(cmd.b, async (b) => {
      const item = b.items[cmd.i % b.items.length];
      if (item) await fn(b, item);
    });
  }

  private async create(n: number, markdown: boolean, idem: boolean): Promise<void> {
    if (this.model.batches.length >= MAX_BATCHES) return;
    const seq = ++this.creates;
    const price = markdown ? 1 : 2;
    const body = JSON.stringify({
      urls: Array.from({ length: n }, (_, j) => `https://example.com/m${seq}/${j}`),
      output: markdown ? "markdown" : "json",
    });
    const idempotencyKey = idem ? `model-${crypto.randomUUID()}` : null;
    const res = await this.post("/api/batch/scrape", body, idempotencyKey);
    if (!this.model.canReserve(n * price)) {
      expect({ status: res.status, code: res.body.code }).toEqual({ status: 403, code: "INSUFFICIENT_CREDITS" });
      return;
    }
    expect(res.status).toBe(202);
    const batchId: string = res.body.batchId;
    const found = await batchStub(batchId).get(this.accountId, -1, 100);
    if (!found.ok) throw new Error(`created batch ${batchId} not found: ${found.message}`);
    await smallSweeps(batchId);
    this.model.addBatch(
      batchId,
      found.items.map((i) => i.uuid),
      price,
      idempotencyKey === null ? null : { idempotencyKey, body },
    );
  }

  private async replayCreate(index: number): Promise<void> {
    const keyed = this.model.batches.filter((b) => b.create !== null);
    const b = keyed[index % Math.max(1, keyed.length)];
    if (!b?.create) return;
    const res = await this.post("/api/batch/scrape", b.create.body, b.create.idempotencyKey);
    expect({ status: res.status, body: res.body }).toEqual({
      status: 202,
      body: { status: "queued", batchId: b.id, total: b.items.length },
    });
  }

  private async grant(amount: number, replay: boolean): Promise<void> {
    const last = this.model.lastGrant;
    const key = replay && last ? last.key : `model-grant-${crypto.randomUUID()}`;
    const res = await callJson(`/admin/accounts/${this.accountId}/credits`, {
      method: "POST",
      headers: { ...adminHeaders, "idempotency-key": key },
      body: JSON.stringify({ amount: replay && last ? last.amount : amount }),
    });
    expect(res.status).toBe(200);
    if (!(replay && last)) this.model.grant(key, amount);
    expect(res.body.credits.granted).toBe(this.model.credits.granted);
  }

  private async start(b: MBatch, item: MItem, tokenKind: "none" | "latest" | "stale"): Promise<void> {
    const token = tokenKind === "none" ? undefined : tokenKind === "latest" ? item.token : item.token - 1;
    const got = await batchStub(b.id).startItem(item.id, token);
    const want = this.model.start(b, item, token);
    if (want.action === "run")
      expect(got).toMatchObject({ action: "run", attempt: want.attempt, itemId: item.id, batchId: b.id });
    else expect(got).toEqual(want);
  }

  /** One startItems call: the answers must be the model's, one start after another in order. */
  private async startGroup(b: MBatch, is: number[]): Promise<void> {
    const items = is.map((i) => b.items[i % b.items.length]!);
    const got = await batchStub(b.id).startItems(items.map((item) => ({ itemId: item.id })));
    for (const [k, item] of items.entries()) {
      const want = this.model.start(b, item, undefined);
      if (want.action === "run")
        expect(got[k]).toMatchObject({ action: "run", attempt: want.attempt, itemId: item.id, batchId: b.id });
      else expect(got[k]).toEqual(want);
    }
  }

  /** One settleItems call: attempts are picked before it is sent; the answers are the model's in order. */
  private async settleGroup(b: MBatch, reports: GroupReport[]): Promise<void> {
    const planned = reports.map((r) => {
      const item = b.items[r.i % b.items.length]!;
      return { ...r, item, attempt: r.older ? item.attempts - 1 : item.attempts };
    });
    const got = await batchStub(b.id).settleItems(
      planned.map(
        (p): SettleReport =>
          p.outcome === "completed"
            ? { itemId: p.item.id, attempt: p.attempt, outcome: "completed", result: { title: "ok" } }
            : {
                itemId: p.item.id,
                attempt: p.attempt,
                outcome: "failed",
                error: failure(p.retryable, p.outcome === "charged"),
                retryable: p.retryable,
              },
      ),
    );
    for (const [k, p] of planned.entries()) {
      const outcome = p.outcome === "completed" ? "completed" : "failed";
      expect(got[k]).toEqual(
        this.model.settle(b, p.item, p.attempt, outcome, outcome === "failed" && p.retryable, p.outcome === "charged"),
      );
    }
  }

  /** What the dispatcher does (dispatch is paused in this project): a new token for a pending item. */
  private async redispatch(b: MBatch, item: MItem): Promise<void> {
    await runInBatch(b.id, (_o, state) => {
      state.storage.sql.exec(
        // The dispatcher never dispatches in a cancelled batch (flow.ts), whose rows may still read pending.
        "UPDATE items SET dispatch_token = dispatch_token + 1 WHERE id = ? AND status = 'pending' AND (SELECT cancelled_at FROM batch) IS NULL",
        item.id,
      );
    });
    this.model.redispatch(b, item);
  }

  private async settle(
    b: MBatch,
    item: MItem,
    older: boolean,
    outcome: "completed" | "failed",
    retryable: boolean,
    charged = false,
  ): Promise<void> {
    await this.sendSettle(b, item, older ? item.attempts - 1 : item.attempts, outcome, retryable, charged);
  }

  private async repeatSettle(b: MBatch, item: MItem): Promise<void> {
    const last = item.lastSettle;
    if (last) await this.sendSettle(b, item, last.attempt, last.outcome, last.retryable, last.charged);
  }

  private async sendSettle(
    b: MBatch,
    item: MItem,
    attempt: number,
    outcome: "completed" | "failed",
    retryable: boolean,
    charged: boolean,
  ): Promise<void> {
    const stub = batchStub(b.id);
    const got =
      outcome === "completed"
        ? await stub.completeItem(item.id, attempt, { title: "ok" })
        : await stub.failItem(item.id, attempt, failure(retryable, charged), { retryable });
    expect(got).toEqual(this.model.settle(b, item, attempt, outcome, retryable, charged));
  }

  private async cancel(b: MBatch): Promise<void> {
    const res = await callJson(`/api/batch/scrape/${b.id}`, { method: "DELETE", headers: keyHeaders(this.apiKey) });
    const want = this.model.cancel(b);
    if (want.status === 200) expect({ status: res.status, body: res.body }).toEqual(want);
    else expect({ status: res.status, code: res.body.code }).toEqual(want);
  }

  /**
   * A cancel sent in the middle of a startItem for every pending item. Whatever order the
   * object saw, it must be one the model can replay: the starts that ran, then the cancel,
   * then the starts that were dropped because the batch was cancelled.
   */
  private async raceCancel(b: MBatch): Promise<void> {
    const stub = batchStub(b.id);
    const pending = b.items.filter((i) => i.status === "pending");
    // Starts spread over a few milliseconds, so some land before the cancel and some after.
    const starts = pending.map(async (item, k) => {
      await sleep(k % 4);
      const started = await stub.startItem(item.id);
      return started;
    });
    const cancelled = callJson(`/api/batch/scrape/${b.id}`, { method: "DELETE", headers: keyHeaders(this.apiKey) });
    const [res, ...results] = await Promise.all([cancelled, ...starts]);
    count("races");
    const ran = pending.filter((_, k) => results[k]?.action === "run");
    for (const [k, item] of pending.entries()) {
      const got = results[k];
      if (got?.action === "run") expect(got).toMatchObject(this.model.start(b, item, undefined));
    }
    const want = this.model.cancel(b);
    if (want.status === 200) expect({ status: res.status, body: res.body }).toEqual(want);
    else expect({ status: res.status, code: res.body.code }).toEqual(want);
    for (const [k, item] of pending.entries()) {
      if (ran.includes(item)) continue;
      expect(results[k]).toEqual(this.model.start(b, item, undefined));
      expect(results[k]).toEqual({ action: "drop", reason: "BATCH_CANCELLED" });
    }
  }

  private async retry(b: MBatch, fault: "none" | "lost" | "replyLost"): Promise<void> {
    // Only a retry that gets as far as asking the account can meet the fault.
    const reaches = b.status !== "cancelled" && b.items.some((i) => i.status === "failed");
    const effective = reaches ? fault : "none";
    if (effective !== "none") {
      await breakNextReservation(b.id, effective === "replyLost");
    }
    const res = await callJson(`/api/batch/scrape/${b.id}/retry`, { method: "POST", headers: keyHeaders(this.apiKey) });
    const want = this.model.retry(b, effective);
    if (want.status === 202) expect({ status: res.status, body: res.body }).toEqual(want);
    else expect({ status: res.status, code: res.body.code }).toEqual(want);
  }

  /** The batch's alarm, as the runtime runs it; the model has nothing to do (a sweep changes no read). */
  private async alarm(b: MBatch): Promise<void> {
    if (await runDurableObjectAlarm(batchStub(b.id))) count("alarms");
  }

  /**
   * A reset: the runtime aborts the batch object (and the account's, if `account`), maybe
   * with a call in flight. Storage says what the call did: a start or a cancel that
   * committed happened (its answer, if one came back, must be the model's); one that did not,
   * never did. An alarm run cut short is run again by the runtime (at least once); the harness
   * arms it again, since runDurableObjectAlarm removed it before running. check() then finds
   * an alarm armed for every piece of work the object holds.
   */
  private async reset(b: MBatch, i: number, account: boolean, during: ResetDuring): Promise<void> {
    count("faults");
    const item = b.items[i % b.items.length]!;
    await runInBatch(b.id, (o) => {
      Object.assign(o, { [RESET_MARK]: true });
      // A cancel's delivery to the account never ends: the reset comes while the cancel awaits it.
      if (during === "cancel") o.toAccount.send = () => new Promise<void>(() => {});
    });
    const stub = batchStub(b.id);
    const call: Promise<unknown> =
      during === "start"
        ? stub.startItem(item.id).catch(() => null)
        : during === "cancel"
          ? stub.cancel(this.accountId).catch(() => null) // over RPC, so it reaches the object before the reset
          : during === "alarm"
            ? runDurableObjectAlarm(stub).then(
                () => "finished",
                () => "cut",
              )
            : Promise.resolve(null);
    if (during === "cancel") {
      let settled = false;
      void call.finally(() => (settled = true));
      for (let k = 0; k < 50 && !settled && !(await this.cancelledInStorage(b)); k++) await sleep(2);
    }
    await resetObject(batchStub(b.id));
    if (account) await resetObject(accountStub(this.accountId));
    const answer = await call;
    if (during !== "idle") count("races");
    this.down.delete(b.id);

    const stored = await runInBatch(b.id, async (o, s) => {
      const fresh = !(RESET_MARK in o);
      o.sweepChunkRows = SWEEP_CHUNK;
      if (answer === "cut" && (await s.storage.getAlarm()) === null) await s.storage.setAlarm(Date.now());
      const sql = s.storage.sql;
      return {
        fresh,
        cancelledAt: sql.exec<{ c: number | null }>("SELECT cancelled_at AS c FROM batch").one().c,
        attempts: sql.exec<{ a: number }>("SELECT attempts AS a FROM items WHERE id = ?", item.id).one().a,
      };
    });
    expect(stored.fresh).toBe(true); // the instance was thrown away, not kept

    if (during === "start") {
      const got = answer as Awaited<ReturnType<typeof stub.startItem>> | null;
      const happened = stored.attempts > item.attempts;
      if (happened || got !== null) {
        const want = this.model.start(b, item, undefined);
        expect(want.action === "run").toBe(happened);
        if (got !== null && want.action === "run")
          expect(got).toMatchObject({ action: "run", attempt: want.attempt, itemId: item.id, batchId: b.id });
        else if (got !== null) expect(got).toEqual(want);
      }
    } else if (during === "cancel") {
      const got = answer as Awaited<ReturnType<typeof stub.cancel>> | null;
      const happened = stored.cancelledAt !== null && b.status !== "cancelled";
      if (happened || got !== null) {
        const want = this.model.cancel(b);
        expect(want.status === 200).toBe(happened);
        if (got?.ok && want.status === 200)
          expect({ cancelledItems: got.cancelledItems, creditsRefunded: got.creditsRefunded }).toEqual({
            cancelledItems: want.body.cancelledItems,
            creditsRefunded: want.body.creditsRefunded,
          });
        else if (got !== null)
          expect({ ok: got.ok, code: got.ok ? null : got.code }).toEqual({
            ok: false,
            code: "code" in want ? want.code : null,
          });
      }
    }
  }

  /** Whether the batch row says cancelled (a cancel committed), read from storage. */
  private cancelledInStorage(b: MBatch): Promise<boolean> {
    return runInBatch(
      b.id,
      (_o, s) => s.storage.sql.exec<{ c: number | null }>("SELECT cancelled_at AS c FROM batch").one().c !== null,
    );
  }

  /**
   * No lost alarm: while the batch holds work, its alarm is armed in time for it: now for
   * rows to sweep, within the settlement window for events to deliver (unless deliveries
   * are failing: then the backoff decides), by the earliest lease end for running items.
   * An alarm the runtime is running reads as none until it re-arms at its end, so a
   * missing or late one is read again for a while before it counts as lost.
   */
  async expectAlarmArmed(b: MBatch): Promise<{ undelivered: boolean }> {
    for (let k = 0; ; k++) {
      const { work, alarm, now } = await runInBatch(b.id, async (o, s) => {
        const sql = s.storage.sql;
        const one = (q: string) => (sql.exec<{ v: number | null }>(q).one().v ?? null) as number | null;
        const now = Date.now();
        const failing = one("SELECT outbox_failures AS v FROM batch") !== 0;
        const work: [string, number | null][] = [];
        if (
          one("SELECT cancelled_at AS v FROM batch") !== null &&
          one("SELECT count(*) AS v FROM items WHERE status = 'pending'")
        )
          work.push(["rows to sweep", now]);
        if (o.toAccount.hasPending()) work.push(["events to deliver", failing ? null : now + SETTLEMENT_WINDOW_MS]);
        const lease = one("SELECT min(lease_expires_at) AS v FROM items WHERE status = 'running'");
        if (lease !== null) work.push(["a lease to watch", lease]);
        return { work, alarm: await s.storage.getAlarm(), now };
      });
      const dueBy = Math.min(...work.map(([, at]) => at ?? Number.POSITIVE_INFINITY));
      if (work.length === 0 || (alarm !== null && alarm <= dueBy)) {
        return { undelivered: work.some(([what]) => what === "events to deliver") };
      }
      if (k === 20) {
        const late = alarm === null ? "no alarm is armed" : `the alarm is ${alarm - now} ms away`;
        throw new Error(`batch ${b.id} holds ${work.map(([what]) => what).join(", ")} and ${late}`);
      }
      await sleep(10);
    }
  }

  private async expireLeases(b: MBatch): Promise<void> {
    if (b.items.some((i) => i.status === "running")) count("faults");
    await runInBatch(b.id, async (o, state) => {
      state.storage.sql.exec("UPDATE items SET lease_expires_at = ? WHERE status = 'running'", Date.now() - 1);
      await o.alarm();
    });
    this.model.expireLeases(b);
  }

  // ---- faults -----------------------------------------------------------------------------

  private async breakOutbox(b: MBatch, failures: number, replyLost: boolean): Promise<void> {
    await breakOutbox(b.id, failures, replyLost);
    if (failures === 0) this.down.add(b.id);
    else this.down.delete(b.id);
  }

  private async healOutbox(b: MBatch): Promise<void> {
    await healOutbox(b.id);
    this.down.delete(b.id);
  }

  async heal(): Promise<void> {
    for (const id of [...this.down]) {
      const b = this.model.batches.find((x) => x.id === id);
      if (b) await this.healOutbox(b);
    }
  }

  // ---- invariants ---------------------------------------------------------------------------

  /**
   * After every step: every item is in exactly the state the model says, with the batch's
   * counts and credits; a batch that holds work has its alarm armed (expectAlarmArmed);
   * the account's books balance; once every outbox has drained, the
   * balances, the credits held by unfinished items and the whole ledger equal the model's
   * (so every refund happened exactly once). While an outbox is down, the ledger may lag
   * the model but never hold anything the model does not.
   */
  async check(): Promise<void> {
    for (const b of this.model.batches) {
      const found = await batchStub(b.id).get(this.accountId, -1, 100);
      if (!found.ok) throw new Error(`batch ${b.id}: ${found.message}`);
      // The status route's answer, kept between polls while storage does not change
      // (src/batch/read-cache.ts), is never stale: it equals the fresh read at every step.
      const kept = await batchStub(b.id).getJson(this.accountId, -1, 100);
      if (!kept.ok) throw new Error(`batch ${b.id}: ${kept.message}`);
      expect(JSON.parse(kept.json)).toEqual({ ...found.batch, items: found.items, nextCursor: found.nextCursor });
      const v = found.batch;
      const counts = countsOf(b);
      expect({
        status: v.status,
        counts: {
          pending: v.pendingCount,
          running: v.runningCount,
          completed: v.completedCount,
          failed: v.failedCount,
          cancelled: v.cancelledCount,
        },
        credits: { reserved: v.creditsReserved, used: v.creditsUsed, refunded: v.creditsRefunded },
        items: found.items.map((i) => [i.uuid, i.status, i.attempts, i.creditsUsed]),
      }).toEqual({
        status: b.status,
        counts,
        credits: { reserved: b.reserved, used: b.used, refunded: b.refunded },
        items: b.items.map((i) => [i.id, i.status, i.attempts, i.creditsUsed]),
      });
      expect(Object.values(counts).reduce((x, y) => x + y, 0)).toBe(b.items.length);
      // A cancelled item finished at the cancel, whether the sweep rewrote its row yet or not.
      for (const i of found.items) if (i.status === "cancelled") expect(i.finishedAt).toBe(v.cancelledAt);
      // An item read alone (its result) is not there unless completed (results here are inline, no stored key).
      for (const i of found.items.slice(0, 2)) {
        const alone = await batchStub(b.id).resultLocation(this.accountId, i.uuid);
        expect(alone).toMatchObject({ ok: false, code: "NOT_FOUND" });
      }
    }

    for (const b of this.model.batches) {
      const { undelivered } = await this.expectAlarmArmed(b);
      if (undelivered && !this.down.has(b.id)) await drainOutbox(b.id);
    }
    const account = accountStub(this.accountId);
    const credits = await account.getCredits();
    expect(credits.granted).toBe(credits.balance + credits.reserved + credits.used);
    expect(Math.min(credits.balance, credits.reserved, credits.used)).toBeGreaterThanOrEqual(0);

    const ledger = await readLedger(this.accountId);
    const keys = ledger.map((e) => e.idempotencyKey);
    expect(new Set(keys).size).toBe(keys.length);
    const real = new Map(ledger.map((e) => [e.idempotencyKey, { kind: e.kind, amount: e.amount }]));
    if (this.down.size === 0) {
      expect(credits).toEqual(this.model.credits);
      expect(credits.reserved).toBe(this.model.heldByItems());
      expect(real).toEqual(this.model.ledger);
      const refunds = ledger.filter((e) => e.kind === "refund").reduce((n, e) => n + e.amount, 0);
      expect(refunds).toBe(this.model.credits.refunded);
    } else {
      for (const [key, entry] of real) expect({ key, entry }).toEqual({ key, entry: this.model.ledger.get(key) });
    }
  }

  /**
   * Runs every batch's alarm until no cancel's sweep is left, then reads the item rows as
   * stored: they must be exactly the model's, as a cancel that rewrote them all at once
   * would have left them (cancelled rows finished at the batch's cancel, counts to match).
   */
  async settleStorage(): Promise<void> {
    for (const b of this.model.batches) {
      for (let k = 0; k < 20; k++) {
        const left = await runInBatch(b.id, (_o, s) => {
          const sql = s.storage.sql;
          const cancelled = sql.exec<{ c: number | null }>("SELECT cancelled_at AS c FROM batch").one().c;
          return cancelled === null ? 0 : sql.exec("SELECT 1 FROM items WHERE status = 'pending'").toArray().length;
        });
        if (left === 0) break;
        expect(await runDurableObjectAlarm(batchStub(b.id))).toBe(true);
      }
      const stored = await runInBatch(b.id, (_o, s) => {
        const sql = s.storage.sql;
        return {
          batch: sql.exec<Record<string, number | null>>("SELECT * FROM batch").one(),
          items: sql
            .exec<{ id: string; status: string; finished_at: number | null; attempts: number }>(
              "SELECT id, status, finished_at, attempts FROM items ORDER BY idx",
            )
            .toArray(),
        };
      });
      expect(stored.items.map((i) => [i.id, i.status, i.attempts])).toEqual(
        b.items.map((i) => [i.id, i.status, i.attempts]),
      );
      for (const i of stored.items) if (i.status === "cancelled") expect(i.finished_at).toBe(stored.batch.cancelled_at);
      expect(stored.batch).toMatchObject({ status: b.status, ...countsOf(b) });
    }
  }

  private post(path: string, body: string, idempotencyKey: string | null) {
    return callJson(path, {
      method: "POST",
      headers: keyHeaders(this.apiKey, idempotencyKey ? { "idempotency-key": idempotencyKey } : {}),
      body,
    });
  }
}
