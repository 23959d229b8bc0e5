/**
 * One object per account, and its RPC surface. Each method checks, then reads, decides and
 * writes in one synchronous transaction (no await inside), so two requests can never both
 * spend the same credits, then arms the alarm. Calls out to batch objects (closing live
 * views, cancel-all, stats, waking waiting batches, asking about stale holds) come after the
 * step, and what they change is re-read in a step of its own.
 *
 * The tables, their SQL and the steps live beside it, one concern a file: account-row.ts,
 * api-keys.ts (keys.ts: the key format), ledger.ts and settlement.ts (the books), holds.ts,
 * reservations.ts, batch-events.ts (a batch's outbox), batch-index.ts, slots.ts,
 * idempotency.ts, live-views.ts, retention.ts, stats.ts, cancel-all.ts, alarm.ts (why it
 * wakes); the webhook tables in src/webhooks/. Migrations: schema.ts.
 */
import { DurableObject } from "cloudflare:workers";
import type { AccountEvent } from "../domain/account-events";
import { type Balances, ZERO_BALANCES } from "../domain/credits";
import { accountNotFound, fail, type Failure, type Ok } from "../domain/errors";
import { holdEventFor } from "../domain/holds";
import { migrate } from "../durable/sql";
import type { Env } from "../env";
import { ABANDONED_HOLD_MS, retentionMs, TOMBSTONE_MS } from "../domain/retention-policy";
import { ACCOUNT_MIGRATIONS } from "./schema";
import type { UsageDay } from "../domain/usage-range";
import { usageDays } from "./usage";
import { positiveInt } from "../lib/positive-int";
import { deliverDue, listDeliveries } from "../webhooks/deliveries";
import { currentSecret, rotateSecret, type SecretState, signingSecrets, wipeExpiredSecret } from "../webhooks/secrets";
import { accountExists, accountRow, closedAt, insertAccount, markClosed } from "./account-row";
import { insertKey, keyMatches, type KeySummary, listKeys, revokeAllKeys, revokeKey, validKeyExpiry } from "./api-keys";
import { nextAlarmAt } from "./alarm";
import { applyOutbox } from "./batch-events";
import { type BatchReceiptPage, batchReceipt } from "./batch-receipt";
import { activeBatchIds, type BatchIndexRow, isTombstone, listVisible } from "./batch-index";
import { askBatchAbout, staleHolds } from "./holds";
import { isKeyLive } from "./idempotency";
import {
  COPY_DROP_RETRY_MS,
  type CopyToDrop,
  copiesPending,
  dropCopies,
  endCopiesOfKeys,
  type LendAnswer,
  lendCopy,
  takeCopiesToDrop,
} from "./key-copies";
import { ledgerAmount, type LedgerEntry, ledgerPage, move, openBooks, readBalances } from "./ledger";
import {
  closeViews,
  endViewsOfKeys,
  LIVE_CLOSE_RETRY_MS,
  noteLiveView,
  takeViewsToClose,
  type ViewToClose,
} from "./live-views";
import {
  type BatchReservation,
  type BatchReservationInput,
  type HoldTimes,
  reserveCreate,
  reserveRetry,
} from "./reservations";
import { purgeRetained } from "./retention";
import { type AccountStats, gatherStats } from "./stats";
import { type CancelAllResult, cancelBatches, NOTHING_CANCELLED } from "./cancel-all";
import { claimSlots, type SlotContext, slotCap, type SlotUsage, slotUsage, wakeWaitingBatches } from "./slots";
import { log } from "../lib/log";

/** Stale holds one alarm asks about. */
const STALE_HOLDS_PER_ALARM = 50;

export type { AccountStats } from "./stats";

export class AccountObject extends DurableObject<Env> {
  private readonly sql = this.ctx.storage.sql;
  /** Set when slots were freed while some batch waits for them: the alarm wakes those batches. */
  #slotsFreed = false;
  #schemaReady = false;

  // ---- accounts and keys (admin) ----------------------------------------------------

  open(input: {
    accountId: string;
    name: string | null;
    credits: number;
    keyId: string;
    keyHash: string;
  }): Ok<{ balances: Balances }> | Failure {
    return this.ctx.storage.transactionSync(() => {
      this.ensureSchema();
      if (this.exists()) return fail("ALREADY_EXISTS", "This account already exists.");
      const now = Date.now();
      insertAccount(this.sql, input.accountId, input.name, now);
      openBooks(this.sql);
      insertKey(this.sql, { keyId: input.keyId, keyHash: input.keyHash, expiresAt: null }, now);
      if (input.credits > 0)
        move(this.sql, "grant", input.credits, { key: `grant:open:${input.accountId}`, note: "opening credits" });
      return { ok: true, balances: readBalances(this.sql) };
    });
  }

  addKey(input: { keyId: string; keyHash: string; expiresAt: number | null }): Ok<{ createdAt: number }> | Failure {
    if (!this.exists()) return accountNotFound();
    if (!this.isOpen()) return fail("ACCOUNT_CLOSED", "This account is closed.");
    const createdAt = Date.now();
    insertKey(this.sql, input, createdAt);
    return { ok: true, createdAt };
  }

  /**
   * Revokes the key at once: it authenticates nothing more, and its open live views are
   * closed. Revoking and marking its views are one step, so a view being opened either was
   * noted before (and is closed here) or is refused by `admitLiveView`. The same step marks
   * the batch objects holding a copy of the key (src/account/key-copies.ts), and the answer
   * waits until each has dropped it: success means no batch object serves the key any
   * more. Should one not confirm, the answer is REVOCATION_PENDING (the alarm keeps
   * pushing; revoking again pushes now and succeeds once all are dropped).
   */
  async revokeKey(keyId: string): Promise<Ok<{ revokedAt: number; liveViewsClosed: number }> | Failure> {
    if (!this.exists()) return accountNotFound();
    this.ensureSchema();
    const revoked = this.ctx.storage.transactionSync(() => {
      const now = Date.now();
      const revokedAt = revokeKey(this.sql, keyId, now);
      if (revokedAt === null) return null;
      return {
        revokedAt,
        views: endViewsOfKeys(this.sql, keyId, now + LIVE_CLOSE_RETRY_MS),
        copies: endCopiesOfKeys(this.sql, keyId, now + COPY_DROP_RETRY_MS),
      };
    });
    if (!revoked) return fail("NOT_FOUND", "No key with this id on this account.");
    const liveViewsClosed = await this.closeEndedViews(revoked.views);
    const held = await this.dropEndedCopies(revoked.copies, keyId);
    if (held > 0) return revocationPending(held);
    return { ok: true, revokedAt: revoked.revokedAt, liveViewsClosed };
  }

  /**
   * A batch object holding no copy of this key asks (once per key and batch): is the key
   * valid? If so the batch is noted as holding a copy, in the same step, so ending the key
   * reaches it; `copy` is null when the account lends no more copies (the batch keeps none).
   */
  lendKeyCopy(keyId: string, keyHash: string, batchId: string): LendAnswer {
    if (!this.isOpen()) return { valid: false };
    return this.ctx.storage.transactionSync((): LendAnswer => {
      const now = Date.now();
      if (!keyMatches(this.sql, keyId, keyHash, now)) return { valid: false };
      const expiresAt = validKeyExpiry(this.sql, keyId, now)!.expiresAt;
      const lent = lendCopy(this.sql, keyId, batchId, now);
      // The alarm pushes the expiry to the copies' holders (live views admitted through them close then).
      if (lent && expiresAt !== null) this.armAlarm();
      return { valid: true, copy: lent ? { keyId, keyHash, expiresAt } : null };
    });
  }

  /** Pushes ended keys to the batch objects holding copies; the copies still held (0 when all confirmed). */
  private async dropEndedCopies(copies: CopyToDrop[], keyId: string | null): Promise<number> {
    if (copies.length === 0) return copiesPending(this.sql, keyId);
    this.armAlarm();
    await dropCopies(this.sql, this.env.BATCH, copies);
    return copiesPending(this.sql, keyId);
  }

  /** Whether a create with this Idempotency-Key was accepted within the last 24 h (a retry would replay it). */
  holdsIdempotencyKey(key: string): boolean {
    return isKeyLive(this.sql, key, Date.now());
  }

  /**
   * A batch object has accepted a live view's socket for `keyId` and asks, before it
   * answers the client: is the key still valid? If so the view is noted (for revocation and
   * expiry) in the same step. False: the batch object closes the socket at once.
   */
  admitLiveView(keyId: string, batchId: string): boolean {
    if (!this.isOpen()) return false;
    this.ensureSchema();
    const expiresAt = this.ctx.storage.transactionSync(() => {
      const now = Date.now();
      const key = validKeyExpiry(this.sql, keyId, now);
      if (!key) return undefined;
      noteLiveView(this.sql, keyId, batchId, now);
      return key.expiresAt;
    });
    // The alarm closes the view when the key expires.
    if (expiresAt !== undefined && expiresAt !== null) this.armAlarm();
    return expiresAt !== undefined;
  }

  /** Closes the views of keys just ended; the alarm retries what this cannot close (and closes it should this object die now). */
  private async closeEndedViews(views: ViewToClose[]): Promise<number> {
    if (views.length > 0) this.armAlarm();
    return closeViews(this.sql, this.env.BATCH, views);
  }

  /** True when the key exists, is not revoked or expired, and its hash matches (constant time). */
  authenticate(keyId: string, keyHash: string): boolean {
    if (!this.isOpen()) return false;
    return keyMatches(this.sql, keyId, keyHash, Date.now());
  }

  describe():
    | Ok<{ accountId: string; name: string | null; createdAt: number; balances: Balances; keys: KeySummary[] }>
    | Failure {
    if (!this.exists()) return accountNotFound();
    const account = accountRow(this.sql);
    const keys = listKeys(this.sql);
    return {
      ok: true,
      accountId: account.id,
      name: account.name,
      createdAt: account.createdAt,
      balances: readBalances(this.sql),
      keys,
    };
  }

  // ---- credits -------------------------------------------------------------------------

  /** Adds credits. The same Idempotency-Key with the same amount replays; another amount is refused. */
  grant(input: { amount: number; idempotencyKey: string }): Ok<{ balances: Balances; replay: boolean }> | Failure {
    if (!this.exists()) return accountNotFound();
    if (!this.isOpen()) return fail("ACCOUNT_CLOSED", "This account is closed.");
    const key = `grant:${input.idempotencyKey}`;
    return this.ctx.storage.transactionSync(() => {
      const earlier = ledgerAmount(this.sql, key);
      if (earlier !== undefined) {
        if (earlier !== input.amount) {
          return fail("IDEMPOTENCY_KEY_REUSED", "This Idempotency-Key was already used with a different amount.");
        }
        return { ok: true, balances: readBalances(this.sql), replay: true };
      }
      move(this.sql, "grant", input.amount, { key, note: "credits granted" });
      return { ok: true, balances: readBalances(this.sql), replay: false };
    });
  }

  getCredits(): Balances {
    return this.exists() ? readBalances(this.sql) : { ...ZERO_BALANCES };
  }

  /** Newest first; `cursor` is the id of the last entry of the previous page. */
  listLedger(cursor: number | null, limit: number): { entries: LedgerEntry[]; nextCursor: number | null } {
    if (!this.exists()) return { entries: [], nextCursor: null };
    return ledgerPage(this.sql, cursor, limit);
  }

  /** One batch's credit movements: totals and a page of its ledger rows, oldest first (src/account/batch-receipt.ts). */
  batchReceipt(batchId: string, cursor: number | null, limit: number): BatchReceiptPage {
    if (!this.exists())
      return { totals: { reserved: 0, charged: 0, refunded: 0, held: null }, entries: [], nextCursor: null };
    this.ensureSchema(); // the ledger_batch index (v9)
    return batchReceipt(this.sql, batchId, cursor, limit);
  }

  // ---- batches ---------------------------------------------------------------------------

  /**
   * Step one of creating a batch (src/account/reservations.ts): the Idempotency-Key, the
   * batch id and its credits held, at once. The hold stays pending until the batch object
   * confirms it; if it never does (the Worker died in between), the alarm resolves it.
   */
  reserveBatch(input: BatchReservationInput): BatchReservation {
    if (!this.isOpen()) return fail("ACCOUNT_CLOSED", "This account is closed.");
    this.ensureSchema();
    const result = this.ctx.storage.transactionSync(() =>
      reserveCreate(this.sql, input, this.holdTimes(), this.slots()),
    );
    if (result.ok && !result.replay) this.armAlarm();
    return result;
  }

  /** Holds more credits for a batch (a retry). Idempotent by key; refused once the key is void. */
  reserveHold(input: { key: string; batchId: string; amount: number }): Ok<{ replay: boolean }> | Failure {
    if (!this.exists()) return accountNotFound();
    const result = this.ctx.storage.transactionSync(() => reserveRetry(this.sql, input, this.holdTimes()));
    if (result.ok && !result.replay) this.armAlarm();
    return result;
  }

  /**
   * Applies a batch object's outbox, all or nothing; each event is idempotent. An event
   * that would break the books (a release of credits the batch does not hold) refuses the
   * whole call: the batch keeps the events and retries, and the error is logged.
   */
  applyBatchEvents(batchId: string, events: AccountEvent[]): Ok<{ applied: number }> | Failure {
    this.ensureSchema();
    let applied = 0;
    try {
      applied = this.ctx.storage.transactionSync(() => this.applyEvents(batchId, events));
    } catch (err) {
      log("error", "batch events refused", { batchId, error: String(err) });
      return fail("INTERNAL_ERROR", String(err instanceof Error ? err.message : err));
    }
    if (this.#slotsFreed || events.some((e) => e.kind === "webhook")) this.armAlarm();
    return { ok: true, applied };
  }

  /**
   * The account-wide concurrency cap: a batch asks for `wanted` slots in all and gets
   * what is free (never less than it held). Versioned, so a repeated claim is harmless.
   */
  claimSlots(batchId: string, version: number, wanted: number): number {
    this.ensureSchema();
    const granted = this.ctx.storage.transactionSync(() =>
      claimSlots(this.sql, this.slots(), batchId, version, wanted),
    );
    if (this.#slotsFreed) this.armAlarm();
    return granted;
  }

  /** Slots held and wanted, for the account and each batch that holds or wants any. */
  slotUsage(): SlotUsage {
    return slotUsage(this.sql, this.slotCap());
  }

  listBatches(page: number, limit: number): { jobs: BatchIndexRow[]; total: number } {
    if (!this.exists()) return { jobs: [], total: 0 };
    this.ensureSchema(); // the index's output column (v9)
    return listVisible(this.sql, page, limit);
  }

  /** GET /api/usage-stats: the account's usage by day, `fromDay` to `toDay` (src/account/usage.ts). */
  usageDays(fromDay: number, toDay: number): UsageDay[] {
    if (!this.exists()) return [];
    this.ensureSchema(); // an account older than the table gets it (filled from its ledger) now
    return usageDays(this.sql, fromDay, toDay);
  }

  // ---- retention and operations (src/batch/retention.ts, /admin/stats, /healthz) ------------

  /** True when this account's batch was removed by retention: its tombstone is in the index. */
  isBatchExpired(batchId: string): boolean {
    return isTombstone(this.sql, batchId);
  }

  /** For /admin/stats (src/account/stats.ts). */
  async stats(): Promise<AccountStats | null> {
    if (!this.exists()) return null;
    const stats = await gatherStats(this.sql, this.env.BATCH);
    return { ...stats, closed: !this.isOpen() };
  }

  /** For /healthz: answers without touching storage. */
  ping(): "pong" {
    return "pong";
  }

  /**
   * Closes the live views of keys that expired (and retries closes that failed), resolves
   * holds that were never confirmed, and forgets old Idempotency-Keys, tombstones and void holds.
   */
  override async alarm(): Promise<void> {
    if (!this.exists()) return;
    this.ensureSchema();
    const now = Date.now();
    const views = this.ctx.storage.transactionSync(() => takeViewsToClose(this.sql, now, now + LIVE_CLOSE_RETRY_MS));
    const copies = this.ctx.storage.transactionSync(() => takeCopiesToDrop(this.sql, now, now + COPY_DROP_RETRY_MS));
    purgeRetained(this.sql, now, {
      tombstonesBefore: now - retentionMs(this.env) - TOMBSTONE_MS,
      abandonedHoldsBefore: now - ABANDONED_HOLD_MS,
    });
    wipeExpiredSecret(this.sql, now);
    const stale = staleHolds(this.sql, now, STALE_HOLDS_PER_ALARM);
    await closeViews(this.sql, this.env.BATCH, views);
    await dropCopies(this.sql, this.env.BATCH, copies);
    await this.nudgeWaitingBatches();
    await deliverDue(this.sql, {
      // Read at each attempt, so a delivery is signed with the secrets valid when it is sent.
      secrets: () => signingSecrets(this.sql, Date.now()),
      allowLoopback: this.env.ALLOW_LOOPBACK_TARGETS === "true",
      baseDelayMs: positiveInt(this.env.WEBHOOK_RETRY_BASE_MS, 30_000),
    });
    for (const hold of stale) {
      const answer = await askBatchAbout(this.sql, this.env.BATCH, hold);
      if (answer === null) continue;
      // Other events ran during the await: applying the event re-reads the hold and skips what is done.
      this.ctx.storage.transactionSync(() =>
        this.applyEvents(hold.batchId, [{ kind: holdEventFor(answer), key: hold.key }]),
      );
    }
    this.armAlarm();
  }

  // ---- internals -------------------------------------------------------------------------

  private slotCap(): number {
    return slotCap(this.env.ACCOUNT_MAX_CONCURRENCY);
  }

  /** For claims in a transaction: the cap, and the note that slots came free for a waiting batch. */
  private slots(): SlotContext {
    return { cap: this.slotCap(), onFreed: () => (this.#slotsFreed = true) };
  }

  /** Only after slots were freed: ask batches that wait for some to claim again. */
  private async nudgeWaitingBatches(): Promise<void> {
    if (!this.#slotsFreed) return;
    this.#slotsFreed = false;
    await wakeWaitingBatches(this.sql, this.env.BATCH, this.slotCap());
  }

  /** Applies pending migrations once per object lifetime (they are idempotent anyway). */
  private ensureSchema(): void {
    if (this.#schemaReady) return;
    migrate(this.sql, ACCOUNT_MIGRATIONS);
    this.#schemaReady = true;
  }

  private exists(): boolean {
    return accountExists(this.sql);
  }

  /** Exists and is not closed (accounts made before migration v3 get the column on first write). */
  private isOpen(): boolean {
    if (!this.exists()) return false;
    this.ensureSchema();
    return closedAt(this.sql) === null;
  }

  /** In a transaction: applies one batch's events (src/account/batch-events.ts); how many changed something. */
  private applyEvents(batchId: string, events: AccountEvent[]): number {
    return applyOutbox(this.sql, batchId, events, this.slots());
  }

  /** Now, and the deadline of a hold taken now. Called inside the transaction that takes it. */
  private holdTimes(): HoldTimes {
    const now = Date.now();
    return { now, deadline: now + positiveInt(this.env.RESERVATION_TIMEOUT_MS, 60_000) };
  }

  /** At the earliest reason to wake (src/account/alarm.ts). */
  private armAlarm(): void {
    this.ensureSchema();
    const at = nextAlarmAt(this.sql, this.#slotsFreed, Date.now());
    if (at !== null) void this.ctx.storage.setAlarm(at);
  }

  // ---- webhooks (lead) -------------------------------------------------------------------

  /** The account's current signing secret (made on first use), and when the previous one stops signing. */
  webhookSecret(): SecretState {
    this.ensureSchema();
    return currentSecret(this.sql, Date.now());
  }

  /**
   * A new signing secret; the one it replaces keeps signing for `overlapMs` (0: stops now),
   * and one that was still in an earlier overlap stops now. The alarm wipes the old one after.
   */
  rotateWebhookSecret(overlapMs: number): Ok<SecretState> | Failure {
    if (!this.exists()) return accountNotFound();
    if (!this.isOpen()) return fail("ACCOUNT_CLOSED", "This account is closed.");
    const rotated = this.ctx.storage.transactionSync(() => rotateSecret(this.sql, Date.now(), overlapMs));
    this.armAlarm();
    return { ok: true, ...rotated };
  }

  listWebhookDeliveries(cursor: number | null, limit: number): ReturnType<typeof listDeliveries> {
    if (!this.exists()) return { deliveries: [], nextCursor: null };
    this.ensureSchema();
    return listDeliveries(this.sql, cursor, limit);
  }

  // ---- cancel all and closing (lead) ----------------------------------------------------

  /**
   * Closes the account: every key revoked at once and nothing new accepted, the batch
   * objects holding key copies told (as a revoke does), then every active batch cancelled
   * with its refunds. Idempotent: closing again pushes and cancels what is left.
   */
  async close(): Promise<Ok<{ closedAt: number; keysRevoked: number; cancelled: CancelAllResult }> | Failure> {
    if (!this.exists()) return accountNotFound();
    this.ensureSchema();
    const { closedAt, keysRevoked, views, copies } = this.ctx.storage.transactionSync(() => {
      const now = Date.now();
      const closedAt = markClosed(this.sql, now);
      const keysRevoked = revokeAllKeys(this.sql, now);
      return {
        closedAt,
        keysRevoked,
        views: endViewsOfKeys(this.sql, null, now + LIVE_CLOSE_RETRY_MS),
        copies: endCopiesOfKeys(this.sql, null, now + COPY_DROP_RETRY_MS),
      };
    });
    await this.closeEndedViews(views);
    const held = await this.dropEndedCopies(copies, null);
    const cancelled = await this.cancelAll();
    // Closed, and every batch cancelled; but a batch object still serving a key copy means not done yet.
    if (held > 0) return revocationPending(held);
    return { ok: true, closedAt, keysRevoked, cancelled };
  }

  /**
   * Cancels every queued or running batch of the account, through each batch object's own
   * cancel (so the per-item rule and refunds are the same as one cancel), a few at a time.
   * Safe to call twice, even at once: each batch object lets exactly one cancel win.
   */
  async cancelAll(): Promise<CancelAllResult> {
    if (!this.exists()) return { ...NOTHING_CANCELLED };
    // Not-yet-visible batches too: a batch whose confirmation is still in flight is active.
    return cancelBatches(this.env.BATCH, accountRow(this.sql).id, activeBatchIds(this.sql));
  }
}

/** A key ended, but `held` copies of it were not confirmed dropped: the caller is told, and may repeat to wait. */
function revocationPending(held: number): Failure {
  return fail(
    "REVOCATION_PENDING",
    `The key is revoked and the account refuses it, but ${held} batch object(s) have not confirmed dropping their copy of it yet; they are retried automatically. Repeat this request to push again: it succeeds once every copy is gone.`,
  );
}
