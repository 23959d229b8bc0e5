/**
 * One object per account: API keys, balances, credit holds, the append-only ledger,
 * the account's batch index and its Idempotency-Key records.
 *
 * Every method decides and writes synchronously (one transaction, no await), so two
 * requests can never both spend the same credits. The only awaits are in `alarm()`,
 * which asks batch objects about holds they never confirmed, and re-checks after.
 */
import { DurableObject } from "cloudflare:workers";
import type { AccountEvent, HoldResolution } from "../domain/account-events";
import { type Balances, ZERO_BALANCES } from "../domain/credits";
import { fail, type Failure } from "../domain/errors";
import { holdEventFor } from "../domain/holds";
import { migrate, tableExists } from "../durable/sql";
import type { Env } from "../env";
import { ABANDONED_HOLD_MS, retentionMs, TOMBSTONE_MS } from "../batch/retention";
import { ACCOUNT_MIGRATIONS } from "./schema";
import { positiveInt } from "../lib/positive-int";
import { deliverDue, listDeliveries, nextDeliveryAt } from "../webhooks/deliveries";
import { currentSecret, previousSecretExpiry, rotateSecret, type SecretState, signingSecrets, wipeExpiredSecret } from "../webhooks/secrets";
import { accountExists, accountRow, closedAt, insertAccount, markClosed } from "./account-row";
import { insertKey, keyMatches, type KeySummary, listKeys, revokeAllKeys, revokeKey, validKeyExpiry } from "./api-keys";
import { applyOutbox } from "./batch-events";
import { activeBatchIds, type BatchIndexRow, isTombstone, listVisible } from "./batch-index";
import { nextHoldDeadline, postponeHold, staleHolds } from "./holds";
import { isKeyLive, nextKeyExpiry } from "./idempotency";
import { ledgerAmount, type LedgerEntry, ledgerPage, move, openBooks, readBalances } from "./ledger";
import { closeViews, endViewsOfKeys, LIVE_CLOSE_RETRY_MS, nextLiveViewCloseAt, noteLiveView, takeViewsToClose } from "./live-views";
import { type BatchReservation, type BatchReservationInput, type HoldTimes, reserveCreate, reserveRetry } from "./reservations";
import { purgeRetained } from "./retention";
import { type AccountStats, gatherStats } from "./stats";
import { cancelBatches, NOTHING_STOPPED, type StopAllResult } from "./stop-all";
import { claimSlots, type SlotContext, slotCap, type SlotUsage, slotUsage, wakeWaitingBatches } from "./slots";

const HOLD_RECHECK_MS = 10_000;
/** Stale holds one alarm asks about. */
const STALE_HOLDS_PER_ALARM = 50;

export type Ok<T> = { ok: true } & T;

export type { AccountStats } from "./stats";

export class AccountObject extends DurableObject<Env> {
  private readonly sql = this.ctx.storage.sql;
  /** Set when slots were freed while some batch waits for them: the alarm wakes those batches. */
  #slotsFreed = false;
  #schemaReady = false;

  // ---- accounts and keys (admin) ----------------------------------------------------

  open(input: { accountId: string; name: string | null; credits: number; keyId: string; keyHash: string }): Ok<{ balances: Balances }> | Failure {
    return this.ctx.storage.transactionSync(() => {
      this.ensureSchema();
      if (this.exists()) return fail("ALREADY_EXISTS", "This account already exists.");
      const now = Date.now();
      insertAccount(this.sql, input.accountId, input.name, now);
      openBooks(this.sql);
      insertKey(this.sql, { keyId: input.keyId, keyHash: input.keyHash, expiresAt: null }, now);
      if (input.credits > 0) move(this.sql, "grant", input.credits, { key: `grant:open:${input.accountId}`, note: "opening credits" });
      return { ok: true, balances: this.balances() };
    });
  }

  addKey(input: { keyId: string; keyHash: string; expiresAt: number | null }): Ok<{ createdAt: number }> | Failure {
    if (!this.exists()) return fail("NOT_FOUND", "No account with this id.");
    if (!this.isOpen()) return fail("ACCOUNT_CLOSED", "This account is closed.");
    const createdAt = Date.now();
    insertKey(this.sql, input, createdAt);
    return { ok: true, createdAt };
  }

  /**
   * Revokes the key at once: it authenticates nothing more, and its open live views are
   * closed. Revoking and marking its views are one step, so a view being opened either was
   * noted before (and is closed here) or is refused by `admitLiveView`.
   */
  async revokeKey(keyId: string): Promise<Ok<{ revokedAt: number; liveViewsClosed: number }> | Failure> {
    if (!this.exists()) return fail("NOT_FOUND", "No account with this id.");
    this.ensureSchema();
    const revoked = this.ctx.storage.transactionSync(() => {
      const now = Date.now();
      const revokedAt = revokeKey(this.sql, keyId, now);
      if (revokedAt === null) return null;
      return { revokedAt, views: endViewsOfKeys(this.sql, keyId, now + LIVE_CLOSE_RETRY_MS) };
    });
    if (!revoked) return fail("NOT_FOUND", "No key with this id on this account.");
    // The alarm retries what this fan-out cannot close (and closes it should this object die now).
    if (revoked.views.length > 0) this.armAlarm();
    return { ok: true, revokedAt: revoked.revokedAt, liveViewsClosed: await closeViews(this.sql, this.env.BATCH, revoked.views) };
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

  /** True when the key exists, is not revoked or expired, and its hash matches (constant time). */
  authenticate(keyId: string, keyHash: string): boolean {
    if (!this.isOpen()) return false;
    return keyMatches(this.sql, keyId, keyHash, Date.now());
  }

  describe(): Ok<{ accountId: string; name: string | null; createdAt: number; balances: Balances; keys: KeySummary[] }> | Failure {
    if (!this.exists()) return fail("NOT_FOUND", "No account with this id.");
    const account = accountRow(this.sql);
    const keys = listKeys(this.sql);
    return { ok: true, accountId: account.id, name: account.name, createdAt: account.createdAt, balances: this.balances(), keys };
  }

  // ---- credits -------------------------------------------------------------------------

  /** Adds credits. The same Idempotency-Key with the same amount replays; another amount is refused. */
  grant(input: { amount: number; idempotencyKey: string }): Ok<{ balances: Balances; replay: boolean }> | Failure {
    if (!this.exists()) return fail("NOT_FOUND", "No account with this id.");
    if (!this.isOpen()) return fail("ACCOUNT_CLOSED", "This account is closed.");
    const key = `grant:${input.idempotencyKey}`;
    return this.ctx.storage.transactionSync(() => {
      const earlier = ledgerAmount(this.sql, key);
      if (earlier !== undefined) {
        if (earlier !== input.amount) {
          return fail("IDEMPOTENCY_KEY_REUSED", "This Idempotency-Key was already used with a different amount.");
        }
        return { ok: true, balances: this.balances(), replay: true };
      }
      move(this.sql, "grant", input.amount, { key, note: "credits granted" });
      return { ok: true, balances: this.balances(), replay: false };
    });
  }

  getCredits(): Balances {
    return this.exists() ? this.balances() : { ...ZERO_BALANCES };
  }

  /** Newest first; `cursor` is the id of the last entry of the previous page. */
  listLedger(cursor: number | null, limit: number): { entries: LedgerEntry[]; nextCursor: number | null } {
    if (!this.exists()) return { entries: [], nextCursor: null };
    return ledgerPage(this.sql, cursor, limit);
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
    const result = this.ctx.storage.transactionSync(() => reserveCreate(this.sql, input, this.holdTimes(), this.slots()));
    if (result.ok && !result.replay) this.armAlarm();
    return result;
  }

  /** Holds more credits for a batch (a retry). Idempotent by key; refused once the key is void. */
  reserveHold(input: { key: string; batchId: string; amount: number }): Ok<{ replay: boolean }> | Failure {
    if (!this.exists()) return fail("NOT_FOUND", "No account with this id.");
    const result = this.ctx.storage.transactionSync(() => reserveRetry(this.sql, input, this.holdTimes()));
    if (result.ok && !result.replay) this.armAlarm();
    return result;
  }

  /**
   * Applies a batch object's outbox, all or nothing; each event is idempotent. An event
   * that would break the books (a release of credits the batch does not hold) refuses the
   * whole call: the batch keeps the events and retries, and the error is logged.
   */
  applyBatchEvents(batchId: string, events: AccountEvent[]): { ok: true; applied: number } | Failure {
    this.ensureSchema();
    let applied = 0;
    try {
      applied = this.ctx.storage.transactionSync(() => this.applyEvents(batchId, events));
    } catch (err) {
      console.error(JSON.stringify({ level: "error", msg: "batch events refused", batchId, error: String(err) }));
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
    const granted = this.ctx.storage.transactionSync(() => claimSlots(this.sql, this.slots(), batchId, version, wanted));
    if (this.#slotsFreed) this.armAlarm();
    return granted;
  }

  /** Slots held and wanted, for the account and each batch that holds or wants any. */
  slotUsage(): SlotUsage {
    return slotUsage(this.sql, this.slotCap());
  }

  listBatches(page: number, limit: number): { jobs: BatchIndexRow[]; total: number } {
    if (!this.exists()) return { jobs: [], total: 0 };
    return listVisible(this.sql, page, limit);
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
    purgeRetained(this.sql, now, { tombstonesBefore: now - retentionMs(this.env) - TOMBSTONE_MS, abandonedHoldsBefore: now - ABANDONED_HOLD_MS });
    this.wipeExpiredWebhookSecret(now);
    const stale = staleHolds(this.sql, now, STALE_HOLDS_PER_ALARM);
    await closeViews(this.sql, this.env.BATCH, views);
    await this.nudgeWaitingBatches();
    await deliverDue(this.sql, {
      secrets: () => this.webhookSigningSecrets(),
      allowLoopback: this.env.ALLOW_LOOPBACK_TARGETS === "true",
      baseDelayMs: positiveInt(this.env.WEBHOOK_RETRY_BASE_MS, 30_000),
    });
    for (const hold of stale) {
      let answer: HoldResolution;
      try {
        answer = await this.env.BATCH.getByName(hold.batchId).resolveHold(hold.key);
      } catch (err) {
        console.error(JSON.stringify({ level: "warn", msg: "hold resolution failed", key: hold.key, error: String(err) }));
        postponeHold(this.sql, hold.key, Date.now() + HOLD_RECHECK_MS);
        continue;
      }
      // Other events ran during the await: applyEvent re-reads the hold and skips what is done.
      this.ctx.storage.transactionSync(() => {
        this.applyEvents(hold.batchId, [{ kind: holdEventFor(answer), key: hold.key }]);
      });
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

  private balances(): Balances {
    return readBalances(this.sql);
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

  private armAlarm(): void {
    const hold = nextHoldDeadline(this.sql);
    const idem = nextKeyExpiry(this.sql);
    const nudge = this.#slotsFreed ? Date.now() : null;
    const webhook = tableExists(this.sql, "webhook_deliveries") ? nextDeliveryAt(this.sql) : null;
    this.ensureSchema(); // every source counts: setAlarm replaces the alarm another one armed
    const oldSecret = previousSecretExpiry(this.sql);
    const liveViews = nextLiveViewCloseAt(this.sql);
    const times = [hold, idem, nudge, webhook, oldSecret, liveViews].filter((t): t is number => t !== null);
    if (times.length === 0) return;
    void this.ctx.storage.setAlarm(Math.min(...times));
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
    if (!this.exists()) return fail("NOT_FOUND", "No account with this id.");
    if (!this.isOpen()) return fail("ACCOUNT_CLOSED", "This account is closed.");
    const rotated = this.ctx.storage.transactionSync(() => rotateSecret(this.sql, Date.now(), overlapMs));
    this.armAlarm();
    return { ok: true, ...rotated };
  }

  /** Read at each delivery attempt, so a delivery is signed with the secrets valid when it is sent. */
  private webhookSigningSecrets(): string[] {
    this.ensureSchema();
    return signingSecrets(this.sql, Date.now());
  }

  private wipeExpiredWebhookSecret(now: number): void {
    this.ensureSchema();
    wipeExpiredSecret(this.sql, now);
  }

  listWebhookDeliveries(cursor: number | null, limit: number): ReturnType<typeof listDeliveries> {
    if (!this.exists()) return { deliveries: [], nextCursor: null };
    this.ensureSchema();
    return listDeliveries(this.sql, cursor, limit);
  }

  // ---- stop all and closing (lead) ----------------------------------------------------

  /**
   * Closes the account: every key revoked at once and nothing new accepted, then every
   * active batch cancelled with its refunds. Idempotent: closing again cancels what is left.
   */
  async close(): Promise<Ok<{ closedAt: number; keysRevoked: number; stopped: StopAllResult }> | Failure> {
    if (!this.exists()) return fail("NOT_FOUND", "No account with this id.");
    this.ensureSchema();
    const { closedAt, keysRevoked, views } = this.ctx.storage.transactionSync(() => {
      const now = Date.now();
      const closedAt = markClosed(this.sql, now);
      const keysRevoked = revokeAllKeys(this.sql, now);
      return { closedAt, keysRevoked, views: endViewsOfKeys(this.sql, null, now + LIVE_CLOSE_RETRY_MS) };
    });
    if (views.length > 0) this.armAlarm();
    await closeViews(this.sql, this.env.BATCH, views);
    return { ok: true, closedAt, keysRevoked, stopped: await this.stopAll() };
  }

  /**
   * Cancels every queued or running batch of the account, through each batch object's own
   * cancel (so the per-item rule and refunds are the same as one cancel), a few at a time.
   * Safe to call twice, even at once: each batch object lets exactly one cancel win.
   */
  async stopAll(): Promise<StopAllResult> {
    if (!this.exists()) return { ...NOTHING_STOPPED };
    // Not-yet-visible batches too: a batch whose confirmation is still in flight is active.
    return cancelBatches(this.env.BATCH, accountRow(this.sql).id, activeBatchIds(this.sql));
  }
}
