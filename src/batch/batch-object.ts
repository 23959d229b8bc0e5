/**
 * One object per batch: the only place where a batch's or an item's state changes.
 *
 * Every transition reads, decides (src/domain/batch-machine.ts) and writes in one
 * synchronous transaction, with no await in between, so cancel and item-start are
 * strictly ordered and can never race. Effects on the account (reserve, consume,
 * refund, index updates) are outbox rows written in that same transaction and
 * delivered afterwards, inline for user-facing calls and by the alarm otherwise.
 */
import { DurableObject } from "cloudflare:workers";
import type { QueueSend } from "../executor/message";
import { type AccountEvent, type BatchIndexSnapshot, type HoldResolution, holdKeys } from "../domain/account-events";
import {
  batchStatusFor,
  decideCancel,
  decideRetry,
  decideSettle,
  decideStart,
  type DropReason,
  isFinished,
  moveItems,
  type SettleOutcome,
} from "../domain/batch-machine";
import { fail, type Failure } from "../domain/errors";
import { LIMITS } from "../domain/limits";
import type { OutputFormat } from "../domain/pricing";
import type { ItemCounts } from "../domain/states";
import { all, first, migrate, tableExists } from "../durable/sql";
import type { Env } from "../env";
import { eventsFor } from "../webhooks/events";
import { acceptLive, answerLive, broadcast, closeLive, LIVE_ACCOUNT_HEADER } from "./live";
import { Outbox } from "./outbox";
import { batchState, type BatchRow, countsOf, itemState, type ItemRow } from "./rows";
import { ABANDONED_HOLD_MS, absentBatch, clearAbandonedHolds, isExpiring, removalDueAt, removeIfDue, type RetentionHost } from "./retention";
import { BATCH_MIGRATIONS } from "./schema";
import { type BatchView, batchView, type ItemView, itemView } from "./views";
import { positiveInt } from "../lib/positive-int";

export interface CreateBatchInput {
  batchId: string;
  accountId: string;
  holdKey: string;
  urls: string[];
  output: OutputFormat;
  selectors: Record<string, string> | null;
  maxConcurrency: number;
  creditsPerItem: number;
  /** Account-wide slots the account granted this batch along with its credits. */
  slotsGranted: number;
  /** Where to send this batch's events (checked by the route). */
  webhookUrl?: string | null;
}

export type StartResult =
  | {
      action: "run";
      batchId: string;
      itemId: string;
      attempt: number;
      url: string;
      output: OutputFormat;
      selectors: Record<string, string> | null;
      leaseExpiresAt: number;
    }
  | { action: "drop"; reason: DropReason };

/** What the executor learned about the page, kept on the item beside the inline result. */
export interface ResultMeta {
  resultKey?: string | null;
  statusCode?: number | null;
  finalUrl?: string | null;
  durationMs?: number | null;
}

export type SettleResult =
  | { ok: true; outcome: "settled" | "duplicate" | "requeued" }
  | { ok: true; outcome: "ignored"; reason: string };

export interface ItemError {
  code: string;
  message: string;
}

type Ok<T> = { ok: true } & T;

/** Max bytes of URL JSON bound to one insert statement (SQLite caps a value at 2 MB). */
const INSERT_CHUNK_BYTES = 1_000_000;
/** After a failed slot claim, and while waiting for slots the account has not freed (it also nudges). */
const SLOT_RETRY_MS = 5_000;
const SLOT_WAIT_MS = 30_000;
/** A dispatched item that has not started after this long is dispatched again. */
const DISPATCH_TIMEOUT_MS = 10 * 60_000;

export class BatchObject extends DurableObject<Env> {
  private readonly sql = this.ctx.storage.sql;
  readonly outbox = new Outbox<AccountEvent>(this.sql, "outbox", (events) => this.sendToAccount(events));
  readonly sends = new Outbox<QueueSend>(this.sql, "sends", (events) => this.sendToQueue(events), 100);
  /** The account object this batch settles with. A field, so fault tests can wrap it. */
  accountStub = (accountId: string) => this.env.ACCOUNT.getByName(accountId);

  // ---- creation and reads -----------------------------------------------------------------

  /** Creates the batch under a hold the account already took. Idempotent by batch id. */
  async create(input: CreateBatchInput): Promise<Ok<{ batch: BatchView; replay: boolean }> | Failure> {
    migrate(this.sql, BATCH_MIGRATIONS);
    const result = this.ctx.storage.transactionSync((): Ok<{ batch: BatchView; replay: boolean }> | Failure => {
      const existing = this.row();
      if (existing) {
        if (existing.batch_id !== input.batchId) throw new Error("batch object already holds another batch");
        return { ok: true, batch: batchView(existing), replay: true };
      }
      const hold = first<{ state: string }>(this.sql, "SELECT state FROM holds WHERE key = ?", input.holdKey);
      if (hold?.state === "abandoned") {
        return fail("RESERVATION_EXPIRED", "The credit reservation for this batch expired before it was created; send the request again.");
      }
      const now = Date.now();
      const total = input.urls.length;
      this.sql.exec(
        `INSERT INTO batch (id, batch_id, account_id, status, output, selectors, max_concurrency, credits_per_item, total,
           pending, running, completed, failed, cancelled, credits_reserved, credits_used, credits_refunded, created_at, version)
         VALUES (1, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, 0, 0, 0, 0, ?, 0, 0, ?, 1)`,
        input.batchId, input.accountId, input.output, input.selectors ? JSON.stringify(input.selectors) : null,
        input.maxConcurrency, input.creditsPerItem, total, total, total * input.creditsPerItem, now,
      );
      this.insertItems(input.urls);
      this.sql.exec(
        "UPDATE batch SET slots_granted = ?, slots_version = 1, webhook_url = ? WHERE id = 1",
        input.slotsGranted, input.webhookUrl ?? null,
      );
      this.sql.exec("INSERT INTO holds (key, state, amount, created_at) VALUES (?, 'applied', ?, ?)", input.holdKey, total * input.creditsPerItem, now);
      this.outbox.add({ kind: "confirm", key: input.holdKey });
      const row = this.row()!;
      this.outbox.add({ kind: "status", version: row.version, snapshot: snapshotOf(row) }, { replacesSameKind: true });
      this.dispatch(now);
      this.fitSlots();
      return { ok: true, batch: batchView(row), replay: false };
    });
    if (result.ok && !result.replay) await this.deliver();
    return result;
  }

  async get(accountId: string, cursor: number, limit: number): Promise<Ok<{ batch: BatchView; items: ItemView[]; nextCursor: string | null }> | Failure> {
    const row = this.owned(accountId);
    if (!row) return this.absent(accountId); // retention: expired, or never theirs
    const rows = all<ItemRow>(this.sql, "SELECT * FROM items WHERE idx > ? ORDER BY idx LIMIT ?", cursor, limit + 1);
    const page = rows.slice(0, limit);
    const nextCursor = rows.length > limit ? String(page[page.length - 1]!.idx) : null;
    return { ok: true, batch: batchView(row), items: page.map((item) => itemView(item, row.batch_id)), nextCursor };
  }

  /** For /admin/stats: items not finished, and how many of them wait in the queue (null: no batch). */
  counts(): { pending: number; running: number; queued: number } | null {
    const row = this.hasBatch() ? this.row() : undefined;
    return row ? { pending: row.pending, running: row.running, queued: row.queued } : null;
  }

  /** For /healthz: answers without touching storage. */
  ping(): "pong" {
    return "pong";
  }

  // ---- user actions -------------------------------------------------------------------------

  /** Cancels every pending item and refunds it; running items finish and are charged. */
  async cancel(accountId: string): Promise<Ok<{ cancelledItems: number; creditsRefunded: number; batch: BatchView }> | Failure> {
    if (!this.owned(accountId)) return this.absent(accountId); // retention: expired, or never theirs
    const result = this.ctx.storage.transactionSync((): Ok<{ cancelledItems: number; creditsRefunded: number; batch: BatchView }> | Failure => {
      const row = this.owned(accountId);
      if (!row) return notFound();
      const decision = decideCancel(batchState(row));
      if (decision.kind === "reject") return fail(decision.code, decision.message);
      const now = Date.now();
      this.sql.exec("UPDATE items SET status = 'cancelled', finished_at = ? WHERE status = 'pending'", now);
      const counts = moveItems(countsOf(row), "pending", "cancelled", decision.cancelledItems);
      this.sql.exec(
        "UPDATE batch SET status = 'cancelled', cancelled_at = ?, credits_refunded = credits_refunded + ?, queued = 0 WHERE id = 1",
        now, decision.creditsRefunded,
      );
      if (decision.creditsRefunded > 0) {
        this.outbox.add({
          kind: "refund",
          key: `${row.batch_id}:cancel`,
          amount: decision.creditsRefunded,
          note: `batch cancelled: ${decision.cancelledItems} pending items refunded`,
        });
      }
      const next = this.saveCounts(row, counts, now);
      this.fitSlots();
      return { ok: true, cancelledItems: decision.cancelledItems, creditsRefunded: decision.creditsRefunded, batch: batchView(next) };
    });
    if (result.ok) await this.deliver();
    return result;
  }

  /**
   * Puts failed items back to pending with fresh credits. The credits are held at the
   * account first (an await, so other events may run meanwhile); the items are flipped
   * only if, after it, the batch is still not cancelled and the hold is still ours.
   */
  async retry(accountId: string): Promise<Ok<{ retriedCount: number }> | Failure> {
    if (!this.owned(accountId)) return this.absent(accountId); // retention: expired, or never theirs
    const plan = this.ctx.storage.transactionSync((): Ok<{ key: string; idxs: number[]; amount: number; batchId: string }> | Failure => {
      const row = this.owned(accountId);
      if (!row) return notFound();
      this.abandonStaleReservations(Date.now());
      const inProgress = first(this.sql, "SELECT 1 AS x FROM holds WHERE state = 'reserving'") !== undefined;
      const decision = decideRetry(batchState(row), inProgress);
      if (decision.kind === "reject") return fail(decision.code, decision.message);
      const idxs = all<{ idx: number }>(this.sql, "SELECT idx FROM items WHERE status = 'failed' ORDER BY idx").map((r) => r.idx);
      const n = first<{ n: number }>(this.sql, "SELECT count(*) AS n FROM holds WHERE key LIKE '%:retry:%'")!.n + 1;
      const key = holdKeys.retry(row.batch_id, n);
      const amount = idxs.length * row.credits_per_item;
      this.sql.exec(
        "INSERT INTO holds (key, state, amount, item_idxs, created_at) VALUES (?, 'reserving', ?, ?, ?)",
        key, amount, JSON.stringify(idxs), Date.now(),
      );
      return { ok: true, key, idxs, amount, batchId: row.batch_id };
    });
    if (!plan.ok) return plan;

    const reserved = await this.accountStub(accountId)
      .reserveHold({ key: plan.key, batchId: plan.batchId, amount: plan.amount })
      .catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
    if (reserved instanceof Error) {
      // Unknown whether the account took it: give up the hold, and tell the account so.
      console.error(JSON.stringify({ level: "warn", msg: "retry reservation failed", key: plan.key, error: String(reserved) }));
      this.abandonHold(plan.key);
      await this.deliver();
      return fail("UNAVAILABLE", "Could not reserve credits for the retry; try again.");
    }
    if (!reserved.ok) {
      this.sql.exec("DELETE FROM holds WHERE key = ? AND state = 'reserving'", plan.key);
      return fail(reserved.code, reserved.message);
    }

    const result = this.ctx.storage.transactionSync((): Ok<{ retriedCount: number }> | Failure => {
      const hold = first<{ state: string }>(this.sql, "SELECT state FROM holds WHERE key = ?", plan.key);
      const row = this.row()!;
      if (hold?.state !== "reserving" || row.status === "cancelled") {
        this.abandonHold(plan.key);
        return row.status === "cancelled"
          ? fail("BATCH_CANCELLED", "The batch was cancelled while the retry was being prepared.")
          : fail("RESERVATION_EXPIRED", "The credit reservation for the retry expired; try again.");
      }
      this.sql.exec(
        `UPDATE items SET status = 'pending', round = round + 1, attempts = 0, lease_attempt = NULL, lease_expires_at = NULL,
           error = NULL, result = NULL, credits_used = 0, started_at = NULL, finished_at = NULL, dispatched_at = NULL,
           not_before = NULL, result_key = NULL, status_code = NULL, final_url = NULL, duration_ms = NULL
         WHERE idx IN (SELECT value FROM json_each(?)) AND status = 'failed'`,
        JSON.stringify(plan.idxs),
      );
      const counts = moveItems(countsOf(row), "failed", "pending", plan.idxs.length);
      this.sql.exec("UPDATE batch SET credits_reserved = credits_reserved + ?, finished_at = NULL WHERE id = 1", plan.amount);
      this.sql.exec("UPDATE holds SET state = 'applied' WHERE key = ?", plan.key);
      this.outbox.add({ kind: "confirm", key: plan.key });
      const now = Date.now();
      this.saveCounts(row, counts, now);
      this.dispatch(now);
      this.fitSlots();
      return { ok: true, retriedCount: plan.idxs.length };
    });
    await this.deliver();
    // A finished batch gave its slots back: ask for them again now rather than at the next alarm.
    if (result.ok) await this.pump();
    return result;
  }

  // ---- executor contract --------------------------------------------------------------------

  /**
   * Grants a lease if the batch is not cancelled and the item is pending (and, with a
   * dispatch token, if the message is the item's latest dispatch); else: drop the work.
   */
  async startItem(itemId: string, dispatchToken?: number): Promise<StartResult> {
    if (!this.hasBatch()) return { action: "drop", reason: "ITEM_NOT_FOUND" };
    const started = this.ctx.storage.transactionSync((): StartResult => {
      const row = this.row()!;
      const item = this.item(itemId);
      const decision = decideStart(batchState(row), itemState(item), dispatchToken);
      if (decision.kind === "drop" || !item) return { action: "drop", reason: decision.kind === "drop" ? decision.reason : "ITEM_NOT_FOUND" };
      const now = Date.now();
      const leaseExpiresAt = now + LIMITS.leaseMs;
      this.sql.exec(
        `UPDATE items SET status = 'running', attempts = ?, lease_attempt = ?, lease_expires_at = ?, started_at = ?,
           dispatched_at = NULL, not_before = NULL WHERE idx = ?`,
        decision.attempt, decision.attempt, leaseExpiresAt, now, item.idx,
      );
      this.sql.exec(
        "UPDATE batch SET started_at = coalesce(started_at, ?), queued = queued - ? WHERE id = 1",
        now, item.dispatched_at === null ? 0 : 1,
      );
      this.saveCounts(row, moveItems(countsOf(row), "pending", "running"), now);
      return {
        action: "run",
        batchId: row.batch_id,
        itemId,
        attempt: decision.attempt,
        url: item.url,
        output: row.output,
        selectors: row.selectors === null ? null : (JSON.parse(row.selectors) as Record<string, string>),
        leaseExpiresAt,
      };
    });
    if (started.action === "run") await this.armAlarm();
    return started;
  }

  /** Settles a running item as completed: its reserved credits are consumed. */
  async completeItem(itemId: string, attempt: number, result: unknown, meta: ResultMeta = {}): Promise<SettleResult> {
    const json = JSON.stringify(result ?? null);
    if (json.length > LIMITS.maxInlineResultBytes) throw new Error(`result of ${json.length} bytes is too large to keep inline`);
    return this.settle(itemId, attempt, "completed", { result: json, error: null, meta });
  }

  /**
   * Settles a running item as failed: its credits are refunded. A retryable failure with
   * attempts left puts the item back to pending instead (no credit moves).
   */
  async failItem(
    itemId: string,
    attempt: number,
    error: ItemError,
    options: { retryable?: boolean; retryAfterSeconds?: number; meta?: ResultMeta } = {},
  ): Promise<SettleResult> {
    const payload = { result: null, error: JSON.stringify(error), meta: options.meta ?? {} };
    return this.settle(itemId, attempt, "failed", payload, options.retryable === true ? { retryAfterSeconds: options.retryAfterSeconds ?? 0 } : null);
  }

  /** Where a completed item's stored result is, for its owner only. */
  async resultLocation(accountId: string, itemId: string): Promise<Ok<{ key: string; output: OutputFormat }> | Failure> {
    const row = this.owned(accountId);
    if (!row) return this.absent(accountId); // retention: expired, or never theirs
    const item = this.item(itemId);
    if (!item || item.status !== "completed" || item.result_key === null) {
      return fail("NOT_FOUND", "No stored result for this item (yet).");
    }
    return { ok: true, key: item.result_key, output: row.output };
  }

  /**
   * The account asks about a hold it never saw confirmed. A hold this batch applied is
   * "applied"; any other is marked abandoned here first, so it can never be applied later.
   */
  resolveHold(key: string): HoldResolution {
    migrate(this.sql, BATCH_MIGRATIONS);
    const hold = first<{ state: string }>(this.sql, "SELECT state FROM holds WHERE key = ?", key);
    if (hold?.state === "applied") return "applied";
    this.sql.exec(
      "INSERT INTO holds (key, state, created_at) VALUES (?, 'abandoned', ?) ON CONFLICT (key) DO UPDATE SET state = 'abandoned'",
      key, Date.now(),
    );
    // retention: an object that will never hold a batch forgets this hold later (clearAbandonedHolds).
    if (!this.hasBatch()) void this.ctx.storage.setAlarm(Date.now() + ABANDONED_HOLD_MS);
    return "abandoned";
  }

  /**
   * Asks the account for more slots when the batch has more work than its grant, then
   * dispatches into them. The account calls this when slots come free elsewhere.
   */
  async pump(): Promise<void> {
    if (!this.hasBatch() || this.env.DISPATCH_PAUSED === "true") return;
    const before = this.row()!;
    const wanted = wantedSlots(before);
    if (wanted <= before.slots_granted) return;
    const version = before.slots_version + 1;
    this.sql.exec("UPDATE batch SET slots_version = ? WHERE id = 1", version);
    const granted = await this.accountStub(before.account_id)
      .claimSlots(before.batch_id, version, wanted)
      .catch((err: unknown) => {
        console.error(JSON.stringify({ level: "warn", msg: "slot claim failed", batchId: before.batch_id, error: String(err) }));
        return null;
      });
    this.ctx.storage.transactionSync(() => {
      const row = this.row()!;
      const now = Date.now();
      if (row.slots_version !== version) return; // a newer claim or release went out meanwhile
      const retryAt = granted === null ? now + SLOT_RETRY_MS : granted < wanted ? now + SLOT_WAIT_MS : null;
      this.sql.exec(
        "UPDATE batch SET slots_granted = ?, slots_retry_at = ? WHERE id = 1",
        Math.max(granted ?? row.slots_granted, row.running + row.queued), retryAt,
      );
      this.dispatch(now);
      this.fitSlots();
    });
    await this.deliver();
  }

  /** Takes back expired leases and delivers the outbox; re-arms itself while work remains. */
  override async alarm(): Promise<void> {
    // retention (src/batch/retention.ts): no batch here but a refused hold, or a finished batch past its time.
    if (!this.hasBatch()) return clearAbandonedHolds(this.ctx.storage);
    if (await removeIfDue(this.retentionHost())) return;
    const now = Date.now();
    this.expireLeases(now);
    this.ctx.storage.transactionSync(() => {
      this.reclaimLostDispatches(now);
      this.dispatch(now);
      this.fitSlots();
    });
    await this.deliver();
    await this.pump();
  }

  // ---- internals ------------------------------------------------------------------------------

  private async settle(
    itemId: string,
    attempt: number,
    outcome: SettleOutcome,
    payload: { result: string | null; error: string | null; meta: ResultMeta },
    retry: { retryAfterSeconds: number } | null = null,
  ): Promise<SettleResult> {
    if (!this.hasBatch()) return { ok: true, outcome: "ignored", reason: "ITEM_NOT_FOUND" };
    const settled = this.ctx.storage.transactionSync((): SettleResult => {
      const row = this.row()!;
      const item = this.item(itemId);
      const decision = decideSettle(itemState(item), attempt, outcome);
      if (decision.kind === "ignore") return { ok: true, outcome: "ignored", reason: decision.reason };
      if (decision.kind === "duplicate" || !item) return { ok: true, outcome: "duplicate" };
      const now = Date.now();
      if (outcome === "failed" && retry && item.attempts < LIMITS.maxAttempts && row.status !== "cancelled") {
        this.requeue(row, item, now, payload.error, retryDelayMs(item.attempts, retry.retryAfterSeconds, positiveInt(this.env.RETRY_BASE_DELAY_MS, 2000)));
        this.dispatch(now);
        this.fitSlots();
        return { ok: true, outcome: "requeued" };
      }
      this.finishItem(row, item, outcome, payload, now);
      this.dispatch(now);
      this.fitSlots();
      return { ok: true, outcome: "settled" };
    });
    if (settled.outcome === "settled" || settled.outcome === "requeued") await this.armAlarm();
    return settled;
  }

  /** Running -> completed (consume) or failed (refund), with its outbox event. In a transaction. */
  private finishItem(
    row: BatchRow,
    item: ItemRow,
    outcome: SettleOutcome,
    payload: { result: string | null; error: string | null; meta: ResultMeta },
    now: number,
  ): BatchRow {
    const price = row.credits_per_item;
    const charged = outcome === "completed" ? price : 0;
    const m = payload.meta;
    this.sql.exec(
      `UPDATE items SET status = ?, result = ?, error = ?, credits_used = ?, finished_at = ?, lease_expires_at = NULL,
         result_key = ?, status_code = ?, final_url = ?, duration_ms = ? WHERE idx = ?`,
      outcome, payload.result, payload.error, charged, now, m.resultKey ?? null, m.statusCode ?? null, m.finalUrl ?? null,
      m.durationMs ?? null, item.idx,
    );
    const key = `${row.batch_id}:${item.id}:r${item.round}:${outcome === "completed" ? "consume" : "refund"}`;
    if (outcome === "completed") {
      this.sql.exec("UPDATE batch SET credits_used = credits_used + ? WHERE id = 1", price);
      this.outbox.add({ kind: "consume", key, amount: price, itemId: item.id });
    } else {
      this.sql.exec("UPDATE batch SET credits_refunded = credits_refunded + ? WHERE id = 1", price);
      this.outbox.add({ kind: "refund", key, amount: price, itemId: item.id, note: "item failed" });
    }
    return this.saveCounts(row, moveItems(countsOf(row), "running", outcome), now, { item, outcome, error: payload.error });
  }

  /** Items whose consumer vanished go back to pending, or fail after the last attempt. */
  private expireLeases(now: number): void {
    this.ctx.storage.transactionSync(() => {
      const expired = all<ItemRow>(this.sql, "SELECT * FROM items WHERE status = 'running' AND lease_expires_at <= ? ORDER BY lease_expires_at LIMIT 500", now);
      for (const item of expired) {
        const row = this.row()!;
        const error = JSON.stringify({ code: "LEASE_EXPIRED", message: "The item's executor stopped answering." });
        if (item.attempts < LIMITS.maxAttempts && row.status !== "cancelled") {
          this.requeue(row, item, now, error, 0);
        } else {
          this.finishItem(row, item, "failed", { result: null, error, meta: {} }, now);
        }
      }
    });
  }

  /** Running -> pending again (a transient failure or a lost lease), to run after `delayMs`. */
  private requeue(row: BatchRow, item: ItemRow, now: number, error: string | null, delayMs: number): void {
    this.sql.exec(
      `UPDATE items SET status = 'pending', lease_attempt = NULL, lease_expires_at = NULL, error = ?, dispatched_at = NULL,
         not_before = ? WHERE idx = ?`,
      error, delayMs > 0 ? now + delayMs : null, item.idx,
    );
    this.saveCounts(row, moveItems(countsOf(row), "running", "pending"), now);
  }

  /**
   * Flow control: fills free slots (maxConcurrency minus running and queued items) with
   * pending items, in order, each with a new dispatch token, as rows of the `sends`
   * outbox. Runs inside the transaction of whatever freed or added work.
   */
  private dispatch(now: number): void {
    if (this.env.DISPATCH_PAUSED === "true") return;
    const row = this.row()!;
    if (row.status === "cancelled" || row.status === "completed" || row.status === "failed") return;
    const slots = Math.min(row.max_concurrency, row.slots_granted) - row.running - row.queued;
    if (slots <= 0) return;
    const next = all<{ idx: number; id: string; dispatch_token: number; not_before: number | null }>(
      this.sql,
      "SELECT idx, id, dispatch_token, not_before FROM items WHERE status = 'pending' AND dispatched_at IS NULL ORDER BY idx LIMIT ?",
      slots,
    );
    for (const item of next) {
      const token = item.dispatch_token + 1;
      this.sql.exec("UPDATE items SET dispatch_token = ?, dispatched_at = ? WHERE idx = ?", token, now, item.idx);
      const delaySeconds = item.not_before === null ? 0 : Math.min(Math.max(0, Math.ceil((item.not_before - now) / 1000)), 43_200);
      this.sends.add({ kind: "dispatch", body: { v: 1, batchId: row.batch_id, itemId: item.id, dispatch: token }, delaySeconds });
    }
    if (next.length > 0) this.sql.exec("UPDATE batch SET queued = queued + ? WHERE id = 1", next.length);
  }

  /**
   * Gives back, through the outbox, slots this batch holds but no longer needs. (Needing
   * more is `pump`'s job: it has to ask, and asking is an await.) In a transaction.
   */
  private fitSlots(): void {
    const row = this.row()!;
    const wanted = wantedSlots(row);
    if (wanted >= row.slots_granted) return;
    const version = row.slots_version + 1;
    this.sql.exec("UPDATE batch SET slots_granted = ?, slots_version = ?, slots_retry_at = NULL WHERE id = 1", wanted, version);
    this.outbox.add({ kind: "slots", version, wanted }, { replacesSameKind: true });
  }

  /** A queue message that never led to a start (lost, or dead-lettered) frees its slot for a new dispatch. */
  private reclaimLostDispatches(now: number): void {
    const row = this.row()!;
    if (row.queued === 0) return;
    // A delayed message (retry backoff) is not lost before its delay has passed.
    const lost = all<{ idx: number }>(
      this.sql,
      `SELECT idx FROM items WHERE status = 'pending' AND dispatched_at IS NOT NULL
         AND max(dispatched_at, coalesce(not_before, 0)) <= ?`,
      now - DISPATCH_TIMEOUT_MS,
    );
    if (lost.length === 0) return;
    this.sql.exec(
      "UPDATE items SET dispatched_at = NULL WHERE idx IN (SELECT value FROM json_each(?))",
      JSON.stringify(lost.map((i) => i.idx)),
    );
    this.sql.exec("UPDATE batch SET queued = max(0, queued - ?) WHERE id = 1", lost.length);
  }

  /**
   * Writes new counts, the status they imply, finishedAt, a new version, and a status
   * event when what the account's index shows has changed. Runs inside a transaction.
   */
  private saveCounts(
    before: BatchRow,
    counts: ItemCounts,
    now: number,
    settled?: { item: ItemRow; outcome: SettleOutcome; error: string | null },
  ): BatchRow {
    const current = this.row()!;
    const status = batchStatusFor(current.status, counts, current.started_at !== null);
    const finishedAt = isFinished(counts) ? (current.finished_at ?? now) : null;
    this.sql.exec(
      `UPDATE batch SET pending = ?, running = ?, completed = ?, failed = ?, cancelled = ?, status = ?, finished_at = ?,
         version = version + 1 WHERE id = 1`,
      counts.pending, counts.running, counts.completed, counts.failed, counts.cancelled, status, finishedAt,
    );
    const after = this.row()!;
    if (after.status !== before.status) logTransition(before, after); // observability
    const snapshot = snapshotOf(after);
    if (JSON.stringify(snapshot) !== JSON.stringify(snapshotOf(before))) {
      this.outbox.add({ kind: "status", version: after.version, snapshot }, { replacesSameKind: true });
    }
    this.notify(before, after, settled);
    return after;
  }

  /**
   * Everyone who watches transitions: live WebSocket clients, and the batch's webhook
   * (its events travel through the account outbox; the account signs and delivers them).
   */
  private notify(before: BatchRow, after: BatchRow, settled?: { item: ItemRow; outcome: SettleOutcome; error: string | null }): void {
    const item = settled ? this.item(settled.item.id) : undefined;
    broadcast(this.ctx, { type: "batch", batch: batchView(after), ...(item ? { item: itemView(item, after.batch_id) } : {}) });
    if (after.webhook_url === null) return;
    const settledItem = settled && {
      id: settled.item.id,
      url: settled.item.url,
      outcome: settled.outcome,
      error: settled.error === null ? null : (JSON.parse(settled.error) as ItemError),
    };
    for (const event of eventsFor(before, after, settledItem)) this.outbox.add({ kind: "webhook", url: after.webhook_url, event });
  }

  /**
   * A retry's hold left `reserving` by a reset (the object died while awaiting the account)
   * would block retries for ever: past the reservation timeout it is abandoned, and the
   * account told to release it (or to refuse it, should the reservation still arrive).
   */
  private abandonStaleReservations(now: number): void {
    const timeout = positiveInt(this.env.RESERVATION_TIMEOUT_MS, 60_000);
    const stale = all<{ key: string }>(this.sql, "SELECT key FROM holds WHERE state = 'reserving' AND created_at <= ?", now - timeout);
    for (const { key } of stale) {
      this.sql.exec("UPDATE holds SET state = 'abandoned' WHERE key = ?", key);
      this.outbox.add({ kind: "void", key });
    }
  }

  /** Abandons a hold this batch will not apply, and tells the account to release it. */
  private abandonHold(key: string): void {
    this.ctx.storage.transactionSync(() => {
      this.sql.exec("UPDATE holds SET state = 'abandoned' WHERE key = ?", key);
      this.outbox.add({ kind: "void", key });
    });
  }

  /** Sends both outboxes now; on failure the alarm retries with backoff. */
  private async deliver(): Promise<void> {
    const [toAccount, toQueue] = await Promise.all([this.outbox.flush(), this.sends.flush()]);
    const delivered = toAccount && toQueue;
    this.sql.exec("UPDATE batch SET outbox_failures = ? WHERE id = 1", delivered ? 0 : (this.row()?.outbox_failures ?? 0) + 1);
    await this.armAlarm();
  }

  private async sendToAccount(events: AccountEvent[]): Promise<void> {
    const row = this.row();
    if (!row) return;
    const applied = await this.accountStub(row.account_id).applyBatchEvents(row.batch_id, events);
    if (!applied.ok) throw new Error(`account refused events: ${applied.message}`);
  }

  private async sendToQueue(sends: QueueSend[]): Promise<void> {
    await this.env.SCRAPE_QUEUE.sendBatch(sends.map((s) => ({ body: s.body, contentType: "json" as const, delaySeconds: s.delaySeconds })));
  }

  /** One alarm serves the outboxes (now, or later after failures), the earliest lease, and lost dispatches. */
  private async armAlarm(): Promise<void> {
    const row = this.row();
    if (!row) return;
    const now = Date.now();
    const times: number[] = [];
    if (this.outbox.hasPending() || this.sends.hasPending()) times.push(row.outbox_failures === 0 ? now : now + backoffMs(row.outbox_failures));
    const lease = first<{ t: number | null }>(this.sql, "SELECT min(lease_expires_at) AS t FROM items WHERE status = 'running'")?.t;
    if (lease != null) times.push(lease);
    if (wantedSlots(row) > row.slots_granted && this.env.DISPATCH_PAUSED !== "true") times.push(Math.max(now, row.slots_retry_at ?? now));
    // retention: a finished batch is removed by this alarm when its time comes (after the outboxes are empty).
    const removalAt = removalDueAt(row, this.env);
    if (removalAt !== null && this.outbox.size() + this.sends.size() === 0) times.push(removalAt);
    if (row.queued > 0) {
      const oldest = first<{ t: number | null }>(this.sql, "SELECT min(max(dispatched_at, coalesce(not_before, 0))) AS t FROM items WHERE status = 'pending' AND dispatched_at IS NOT NULL")?.t;
      if (oldest != null) times.push(oldest + DISPATCH_TIMEOUT_MS);
    }
    if (times.length === 0) {
      await this.ctx.storage.deleteAlarm();
      return;
    }
    const next = Math.min(...times);
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > next || current < now - 1000) await this.ctx.storage.setAlarm(next);
  }

  private insertItems(urls: string[]): void {
    let start = 0;
    while (start < urls.length) {
      let end = start;
      let bytes = 0;
      const chunk: [string, string][] = [];
      while (end < urls.length && (chunk.length === 0 || bytes < INSERT_CHUNK_BYTES)) {
        const url = urls[end]!;
        chunk.push([crypto.randomUUID(), url]);
        bytes += url.length + 48;
        end++;
      }
      this.sql.exec(
        `INSERT INTO items (idx, id, url, status)
         SELECT ? + key, json_extract(value, '$[0]'), json_extract(value, '$[1]'), 'pending' FROM json_each(?)`,
        start, JSON.stringify(chunk),
      );
      start = end;
    }
  }

  private hasBatch(): boolean {
    return tableExists(this.sql, "batch") && this.row() !== undefined;
  }

  private row(): BatchRow | undefined {
    return first<BatchRow>(this.sql, "SELECT * FROM batch WHERE id = 1");
  }

  /** The batch, if it exists, belongs to this account and is not being removed (otherwise indistinguishable). */
  private owned(accountId: string): BatchRow | undefined {
    if (!tableExists(this.sql, "batch")) return undefined;
    const row = this.row();
    return row?.account_id === accountId && !isExpiring(row) ? row : undefined;
  }

  // ---- retention and operations (src/batch/retention.ts, /healthz, /admin/stats) -------------

  /** What retention needs from this object. */
  private retentionHost(): RetentionHost {
    return { storage: this.ctx.storage, env: this.env, outbox: this.outbox, row: () => this.row(), deliver: () => this.deliver() };
  }

  /** NOT_FOUND or BATCH_EXPIRED (the account keeps the tombstone of a removed batch). */
  private absent(accountId: string): Promise<Failure> {
    return absentBatch(this.retentionHost(), this.accountStub(accountId), this.ctx.id.name, accountId);
  }

  private item(itemId: string): ItemRow | undefined {
    return first<ItemRow>(this.sql, "SELECT * FROM items WHERE id = ?", itemId);
  }

  // ---- live views (src/batch/live.ts) -- region begin: hibernatable WebSockets ---------------
  // The Worker (src/http/routes/live.ts) forwards an authenticated upgrade with the account id;
  // notify() broadcasts every transition to the sockets accepted here.

  override async fetch(request: Request): Promise<Response> {
    const accountId = request.headers.get(LIVE_ACCOUNT_HEADER) ?? "";
    const row = accountId ? this.owned(accountId) : undefined;
    return acceptLive(this.ctx, request, accountId, row ? batchView(row) : null);
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    answerLive(ws, message);
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    closeLive(ws, code, reason);
  }
  // ---- live views: region end -------------------------------------------------------------------
}

/** Slots the batch could use now: its running and queued items, plus pending ones up to maxConcurrency. */
function wantedSlots(row: BatchRow): number {
  if (row.status === "cancelled" || row.status === "completed" || row.status === "failed") return row.running + row.queued;
  return Math.min(row.max_concurrency, row.running + row.pending);
}

function snapshotOf(row: BatchRow): BatchIndexSnapshot {
  return { status: row.status, completed: row.completed, failed: row.failed, cancelled: row.cancelled, finishedAt: row.finished_at };
}

function notFound(): Failure {
  return fail("NOT_FOUND", "No batch found with this ID.");
}

/** One structured line per batch status change (ids and counts only: URLs may carry secrets). */
function logTransition(before: BatchRow, after: BatchRow): void {
  console.log(JSON.stringify({
    level: "info",
    msg: "batch transition",
    batchId: after.batch_id,
    accountId: after.account_id,
    from: before.status,
    to: after.status,
    counts: { total: after.total, ...countsOf(after), queued: after.queued },
  }));
}

/** Before a transient failure's next attempt: base, 2 x base, 4 x base … with jitter, or what Retry-After asked. */
function retryDelayMs(attempts: number, retryAfterSeconds: number, baseMs: number): number {
  const backoff = Math.min(baseMs * 2 ** (attempts - 1), 60_000) * (0.75 + Math.random() / 2);
  return Math.round(Math.max(backoff, retryAfterSeconds * 1000));
}

/** Exponential backoff with jitter: about 1 s, 2 s, 4 s … capped at 5 minutes. */
function backoffMs(failures: number): number {
  const base = Math.min(1000 * 2 ** (failures - 1), 300_000);
  return Math.round(base * (0.5 + Math.random() / 2));
}
