/**
 * One object per account: API keys, balances, credit holds, the append-only ledger,
 * the account's batch index and its Idempotency-Key records.
 *
 * Every method decides and writes synchronously (one transaction, no await), so two
 * requests can never both spend the same credits. The only awaits are in `alarm()`,
 * which asks batch objects about holds they never confirmed, and re-checks after.
 */
import { DurableObject } from "cloudflare:workers";
import type { AccountEvent, BatchIndexSnapshot, HoldResolution } from "../domain/account-events";
import { holdKeys } from "../domain/account-events";
import { applyMovement, type Balances, type MovementKind, ZERO_BALANCES } from "../domain/credits";
import { fail, type Failure, type Ok } from "../domain/errors";
import type { BatchStatus } from "../domain/states";
import { all, first, migrate, tableExists } from "../durable/sql";
import type { Env } from "../env";
import { ABANDONED_HOLD_MS, retentionMs, TOMBSTONE_MS } from "../batch/retention";
import { ACCOUNT_MIGRATIONS } from "./schema";
import { Settlement } from "./settlement";
import { log } from "../lib/log";
import { mapBounded } from "../lib/map-bounded";
import { deliverDue, listDeliveries, nextDeliveryAt, recordEvent } from "../webhooks/deliveries";
import { currentSecret, previousSecretExpiry, rotateSecret, type SecretState, signingSecrets, wipeExpiredSecret } from "../webhooks/secrets";
import { hashesEqual } from "./keys";
import { byBatch, endViewsOfKeys, LIVE_CLOSE_RETRY_MS, nextLiveViewCloseAt, noteLiveView, takeViewsToClose, type ViewToClose, viewsClosed } from "./live-views";
import { positiveInt } from "../lib/positive-int";

export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;
const HOLD_RECHECK_MS = 10_000;
const DEFAULT_ACCOUNT_CONCURRENCY = 50;
/** Batches woken per alarm when slots free up. */
const NUDGE_BATCHES = 20;
/** Active batches one stats() call asks for their counts, and how many at once. */
const STATS_ACTIVE_BATCHES = 100;
const STATS_CONCURRENCY = 8;

export interface LedgerEntry {
  id: number;
  kind: MovementKind;
  amount: number;
  batchId: string | null;
  itemId: string | null;
  note: string | null;
  idempotencyKey: string;
  balanceAfter: number;
  reservedAfter: number;
  createdAt: number;
}

export interface BatchIndexRow {
  batchId: string;
  status: BatchStatus;
  total: number;
  completed: number;
  failed: number;
  cancelled: number;
  createdAt: number;
  finishedAt: number | null;
}

/** One account's share of GET /admin/stats. `partial`: some active batches were not asked or did not answer. */
export interface AccountStats {
  batches: Record<string, number>;
  items: { pending: number; running: number; queued: number };
  credits: Balances;
  partial: boolean;
  /** Closed (DELETE /admin/accounts/:id): counted apart, its books still in the sums. */
  closed: boolean;
}
type HoldRow = { key: string; batch_id: string; purpose: string; amount: number; state: string; deadline: number | null };

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
      this.sql.exec("INSERT INTO account (id, name, created_at) VALUES (?, ?, ?)", input.accountId, input.name, now);
      this.sql.exec("INSERT INTO balances (id, granted, balance, reserved, used, refunded) VALUES (1, 0, 0, 0, 0, 0)");
      this.sql.exec("INSERT INTO api_keys (key_id, key_hash, created_at) VALUES (?, ?, ?)", input.keyId, input.keyHash, now);
      if (input.credits > 0) this.move("grant", input.credits, { key: `grant:open:${input.accountId}`, note: "opening credits" });
      return { ok: true, balances: this.balances() };
    });
  }

  addKey(input: { keyId: string; keyHash: string; expiresAt: number | null }): Ok<{ createdAt: number }> | Failure {
    if (!this.exists()) return fail("NOT_FOUND", "No account with this id.");
    if (!this.isOpen()) return fail("ACCOUNT_CLOSED", "This account is closed.");
    const createdAt = Date.now();
    this.sql.exec(
      "INSERT INTO api_keys (key_id, key_hash, created_at, expires_at) VALUES (?, ?, ?, ?)",
      input.keyId, input.keyHash, createdAt, input.expiresAt,
    );
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
      const row = first<{ revoked_at: number | null }>(this.sql, "SELECT revoked_at FROM api_keys WHERE key_id = ?", keyId);
      if (!row) return null;
      const now = Date.now();
      const revokedAt = row.revoked_at ?? now;
      this.sql.exec("UPDATE api_keys SET revoked_at = ? WHERE key_id = ?", revokedAt, keyId);
      return { revokedAt, views: endViewsOfKeys(this.sql, keyId, now + LIVE_CLOSE_RETRY_MS) };
    });
    if (!revoked) return fail("NOT_FOUND", "No key with this id on this account.");
    // The alarm retries what this fan-out cannot close (and closes it should this object die now).
    if (revoked.views.length > 0) this.armAlarm();
    return { ok: true, revokedAt: revoked.revokedAt, liveViewsClosed: await this.closeLiveViews(revoked.views) };
  }

  /** Whether a create with this Idempotency-Key was accepted within the last 24 h (a retry would replay it). */
  holdsIdempotencyKey(key: string): boolean {
    if (!tableExists(this.sql, "idempotency")) return false;
    const row = first<{ created_at: number }>(this.sql, "SELECT created_at FROM idempotency WHERE key = ?", key);
    return row !== undefined && row.created_at > Date.now() - IDEMPOTENCY_TTL_MS;
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
      const key = first<{ expires_at: number | null }>(
        this.sql, "SELECT expires_at FROM api_keys WHERE key_id = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)", keyId, now,
      );
      if (!key) return undefined;
      noteLiveView(this.sql, keyId, batchId, now);
      return key.expires_at;
    });
    // The alarm closes the view when the key expires.
    if (expiresAt !== undefined && expiresAt !== null) this.armAlarm();
    return expiresAt !== undefined;
  }

  /**
   * Asks batch objects to close these views (marked for closing already), a few batches at
   * a time; forgets those closed. A batch that does not answer keeps its row, and the alarm
   * asks it again. Returns the sockets closed.
   */
  private async closeLiveViews(views: readonly ViewToClose[]): Promise<number> {
    const closed = await mapBounded(byBatch(views), STOP_ALL_CONCURRENCY, async ({ batchId, why, keyIds }) => {
      try {
        const n = await this.env.BATCH.getByName(batchId).closeLiveViews(keyIds, why);
        viewsClosed(this.sql, batchId, keyIds);
        return n;
      } catch (err) {
        log("warn", "could not close live views", { batchId, error: String(err) });
        return 0;
      }
    });
    return closed.reduce((n, c) => n + c, 0);
  }

  /** True when the key exists, is not revoked or expired, and its hash matches (constant time). */
  authenticate(keyId: string, keyHash: string): boolean {
    if (!this.isOpen()) return false;
    const row = first<{ key_hash: string; expires_at: number | null; revoked_at: number | null }>(
      this.sql, "SELECT key_hash, expires_at, revoked_at FROM api_keys WHERE key_id = ?", keyId,
    );
    // Compare even when there is no row, so timing does not tell which key ids exist.
    const matches = hashesEqual(row?.key_hash ?? "0".repeat(keyHash.length), keyHash);
    if (!row || !matches || row.revoked_at !== null) return false;
    return row.expires_at === null || row.expires_at > Date.now();
  }

  describe(): Ok<{ accountId: string; name: string | null; createdAt: number; balances: Balances; keys: { keyId: string; createdAt: number; expiresAt: number | null; revokedAt: number | null }[] }> | Failure {
    if (!this.exists()) return fail("NOT_FOUND", "No account with this id.");
    const account = first<{ id: string; name: string | null; created_at: number }>(this.sql, "SELECT id, name, created_at FROM account")!;
    const keys = all<{ keyId: string; createdAt: number; expiresAt: number | null; revokedAt: number | null }>(
      this.sql,
      "SELECT key_id AS keyId, created_at AS createdAt, expires_at AS expiresAt, revoked_at AS revokedAt FROM api_keys ORDER BY created_at",
    );
    return { ok: true, accountId: account.id, name: account.name, createdAt: account.created_at, balances: this.balances(), keys };
  }

  // ---- credits -------------------------------------------------------------------------

  /** Adds credits. The same Idempotency-Key with the same amount replays; another amount is refused. */
  grant(input: { amount: number; idempotencyKey: string }): Ok<{ balances: Balances; replay: boolean }> | Failure {
    if (!this.exists()) return fail("NOT_FOUND", "No account with this id.");
    if (!this.isOpen()) return fail("ACCOUNT_CLOSED", "This account is closed.");
    const key = `grant:${input.idempotencyKey}`;
    return this.ctx.storage.transactionSync(() => {
      const earlier = first<{ amount: number }>(this.sql, "SELECT amount FROM ledger WHERE idem_key = ?", key);
      if (earlier) {
        if (earlier.amount !== input.amount) {
          return fail("IDEMPOTENCY_KEY_REUSED", "This Idempotency-Key was already used with a different amount.");
        }
        return { ok: true, balances: this.balances(), replay: true };
      }
      this.move("grant", input.amount, { key, note: "credits granted" });
      return { ok: true, balances: this.balances(), replay: false };
    });
  }

  getCredits(): Balances {
    return this.exists() ? this.balances() : { ...ZERO_BALANCES };
  }

  /** Newest first; `cursor` is the id of the last entry of the previous page. */
  listLedger(cursor: number | null, limit: number): { entries: LedgerEntry[]; nextCursor: number | null } {
    if (!this.exists()) return { entries: [], nextCursor: null };
    const rows = all<LedgerEntry>(
      this.sql,
      `SELECT seq AS id, kind, amount, batch_id AS batchId, item_id AS itemId, note, idem_key AS idempotencyKey,
              balance_after AS balanceAfter, reserved_after AS reservedAfter, created_at AS createdAt
       FROM ledger WHERE seq < ? ORDER BY seq DESC LIMIT ?`,
      cursor ?? Number.MAX_SAFE_INTEGER, limit + 1,
    );
    const more = rows.length > limit;
    const entries = rows.slice(0, limit);
    return { entries, nextCursor: more ? entries[entries.length - 1]!.id : null };
  }

  // ---- batches ---------------------------------------------------------------------------

  /**
   * Step one of creating a batch: take the Idempotency-Key, pick the batch id and hold
   * its credits, all at once. The hold stays pending until the batch object confirms it;
   * if it never does (the Worker died in between), the alarm releases it.
   */
  reserveBatch(input: {
    total: number;
    amount: number;
    wantedSlots: number;
    /** Batches the account may have pending or running at once (the route's config). */
    maxActiveBatches: number;
    idempotencyKey: string | null;
    requestHash: string | null;
  }):
    Ok<{ batchId: string; holdKey: string; replay: boolean; slotsGranted: number }> | Failure {
    if (!this.isOpen()) return fail("ACCOUNT_CLOSED", "This account is closed.");
    this.ensureSchema();
    const result = this.ctx.storage.transactionSync((): Ok<{ batchId: string; holdKey: string; replay: boolean; slotsGranted: number }> | Failure => {
      const now = Date.now();
      if (input.idempotencyKey !== null) {
        const earlier = first<{ request_hash: string; batch_id: string; created_at: number }>(
          this.sql, "SELECT request_hash, batch_id, created_at FROM idempotency WHERE key = ?", input.idempotencyKey,
        );
        if (earlier && earlier.created_at > now - IDEMPOTENCY_TTL_MS) {
          if (earlier.request_hash !== input.requestHash) {
            return fail("IDEMPOTENCY_KEY_REUSED", "This Idempotency-Key was already used with a different request body.");
          }
          const slots = first<{ granted: number }>(this.sql, "SELECT granted FROM slots WHERE batch_id = ?", earlier.batch_id);
          return { ok: true, batchId: earlier.batch_id, holdKey: holdKeys.create(earlier.batch_id), replay: true, slotsGranted: slots?.granted ?? 0 };
        }
        this.sql.exec("DELETE FROM idempotency WHERE key = ?", input.idempotencyKey);
      }
      const active = first<{ n: number }>(this.sql, "SELECT count(*) AS n FROM batches WHERE status IN ('pending', 'running')")!.n;
      if (active >= input.maxActiveBatches) {
        return fail("TOO_MANY_ACTIVE_BATCHES", `This account already has ${active} batches pending or running (at most ${input.maxActiveBatches}); wait for some to finish.`);
      }
      const batchId = crypto.randomUUID();
      const holdKey = holdKeys.create(batchId);
      const held = this.hold(holdKey, batchId, "create", input.amount);
      if (!held.ok) return held;
      this.sql.exec(
        "INSERT INTO batches (batch_id, status, total, reserved, created_at) VALUES (?, 'pending', ?, ?, ?)",
        batchId, input.total, input.amount, now,
      );
      if (input.idempotencyKey !== null) {
        this.sql.exec(
          "INSERT INTO idempotency (key, request_hash, batch_id, created_at) VALUES (?, ?, ?, ?)",
          input.idempotencyKey, input.requestHash, batchId, now,
        );
      }
      const slotsGranted = this.claim(batchId, 1, input.wantedSlots);
      return { ok: true, batchId, holdKey, replay: false, slotsGranted };
    });
    if (result.ok && !result.replay) this.armAlarm();
    return result;
  }

  /** Holds more credits for a batch (a retry). Idempotent by key; refused once the key is void. */
  reserveHold(input: { key: string; batchId: string; amount: number }): Ok<{ replay: boolean }> | Failure {
    if (!this.exists()) return fail("NOT_FOUND", "No account with this id.");
    const result = this.ctx.storage.transactionSync((): Ok<{ replay: boolean }> | Failure => {
      const existing = first<HoldRow>(this.sql, "SELECT * FROM holds WHERE key = ?", input.key);
      if (existing) {
        return existing.state === "void"
          ? fail("RESERVATION_EXPIRED", "This reservation was already released.")
          : { ok: true, replay: true };
      }
      const held = this.hold(input.key, input.batchId, "retry", input.amount);
      if (!held.ok) return held;
      this.sql.exec("UPDATE batches SET reserved = reserved + ? WHERE batch_id = ?", input.amount, input.batchId);
      return { ok: true, replay: false };
    });
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
    const granted = this.ctx.storage.transactionSync(() => this.claim(batchId, version, wanted));
    if (this.#slotsFreed) this.armAlarm();
    return granted;
  }

  /** Slots held and wanted, for the account and each batch that holds or wants any. */
  slotUsage(): { cap: number; granted: number; batches: { batchId: string; granted: number; wanted: number }[] } {
    if (!tableExists(this.sql, "slots")) return { cap: this.slotCap(), granted: 0, batches: [] };
    const batches = all<{ batchId: string; granted: number; wanted: number }>(
      this.sql, "SELECT batch_id AS batchId, granted, wanted FROM slots WHERE granted > 0 OR wanted > 0",
    );
    return { cap: this.slotCap(), granted: batches.reduce((n, b) => n + b.granted, 0), batches };
  }

  listBatches(page: number, limit: number): { jobs: BatchIndexRow[]; total: number } {
    if (!this.exists()) return { jobs: [], total: 0 };
    const total = first<{ n: number }>(this.sql, "SELECT count(*) AS n FROM batches WHERE visible = 1")!.n;
    const jobs = all<BatchIndexRow>(
      this.sql,
      `SELECT batch_id AS batchId, status, total, completed, failed, cancelled, created_at AS createdAt, finished_at AS finishedAt
       FROM batches WHERE visible = 1 ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?`,
      limit, (page - 1) * limit,
    );
    return { jobs, total };
  }

  // ---- retention and operations (src/batch/retention.ts, /admin/stats, /healthz) ------------

  /** True when this account's batch was removed by retention: its tombstone is in the index. */
  isBatchExpired(batchId: string): boolean {
    if (!tableExists(this.sql, "batches")) return false;
    return first(this.sql, "SELECT 1 AS x FROM batches WHERE batch_id = ? AND status = 'expired'", batchId) !== undefined;
  }

  /**
   * For /admin/stats: batches by state (from the index), items not finished (asked of the
   * active batches themselves, at most STATS_ACTIVE_BATCHES, a few at a time), credits.
   */
  async stats(): Promise<AccountStats | null> {
    if (!this.exists()) return null;
    const batches: Record<string, number> = {};
    const byStatus = all<{ status: string; n: number }>(
      this.sql, "SELECT status, count(*) AS n FROM batches WHERE visible = 1 OR status = 'expired' GROUP BY status",
    );
    for (const r of byStatus) batches[r.status] = r.n;
    const active = all<{ batch_id: string }>(
      this.sql, "SELECT batch_id FROM batches WHERE visible = 1 AND finished_at IS NULL ORDER BY created_at LIMIT ?", STATS_ACTIVE_BATCHES + 1,
    ).map((r) => r.batch_id);
    const credits = this.balances();
    const answers = await mapBounded(active.slice(0, STATS_ACTIVE_BATCHES), STATS_CONCURRENCY, async (batchId) => {
      try {
        return await this.env.BATCH.getByName(batchId).counts();
      } catch (err) {
        log("warn", "stats: batch did not answer", { batchId, error: String(err) });
        return "unreachable" as const;
      }
    });
    const items = { pending: 0, running: 0, queued: 0 };
    for (const a of answers) {
      if (a === null || a === "unreachable") continue;
      items.pending += a.pending;
      items.running += a.running;
      items.queued += a.queued;
    }
    const partial = active.length > STATS_ACTIVE_BATCHES || answers.includes("unreachable");
    return { batches, items, credits, partial, closed: !this.isOpen() };
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
    this.sql.exec("DELETE FROM idempotency WHERE created_at <= ?", now - IDEMPOTENCY_TTL_MS);
    this.purgeRetained(now); // retention
    this.wipeExpiredWebhookSecret(now);
    const stale = all<HoldRow>(this.sql, "SELECT * FROM holds WHERE state = 'pending' AND deadline <= ? LIMIT 50", now);
    await this.closeLiveViews(views);
    await this.nudgeWaitingBatches();
    await deliverDue(this.sql, {
      secrets: () => this.webhookSigningSecrets(),
      allowLoopback: this.env.ALLOW_LOOPBACK_TARGETS === "true",
      baseDelayMs: positiveInt(this.env.WEBHOOK_RETRY_BASE_MS, 30_000),
    });
    for (const hold of stale) {
      let answer: HoldResolution;
      try {
        answer = await this.env.BATCH.getByName(hold.batch_id).resolveHold(hold.key);
      } catch (err) {
        log("warn", "hold resolution failed", { key: hold.key, error: String(err) });
        this.sql.exec("UPDATE holds SET deadline = ? WHERE key = ? AND state = 'pending'", Date.now() + HOLD_RECHECK_MS, hold.key);
        continue;
      }
      // Other events ran during the await: applyEvent re-reads the hold and skips what is done.
      this.ctx.storage.transactionSync(() => {
        this.applyEvents(hold.batch_id, [{ kind: answer === "applied" ? "confirm" : "void", key: hold.key }]);
      });
    }
    this.armAlarm();
  }

  // ---- internals -------------------------------------------------------------------------

  private slotCap(): number {
    return positiveInt(this.env.ACCOUNT_MAX_CONCURRENCY, DEFAULT_ACCOUNT_CONCURRENCY);
  }

  /** In a transaction: the batch's new grant, min(wanted, what the others leave free). */
  private claim(batchId: string, version: number, wanted: number): number {
    const row = first<{ granted: number; version: number }>(this.sql, "SELECT granted, version FROM slots WHERE batch_id = ?", batchId);
    if (row && row.version >= version) return row.granted;
    const others = this.slotsHeld() - (row?.granted ?? 0);
    const granted = Math.max(0, Math.min(wanted, this.slotCap() - others));
    this.sql.exec(
      `INSERT INTO slots (batch_id, granted, wanted, version) VALUES (?, ?, ?, ?)
       ON CONFLICT (batch_id) DO UPDATE SET granted = excluded.granted, wanted = excluded.wanted, version = excluded.version`,
      batchId, granted, wanted, version,
    );
    if (row && granted < row.granted && this.waitingBatches(1).length > 0) this.#slotsFreed = true;
    return granted;
  }

  /** Slots granted over all batches (through the partial index: only batches that hold some). */
  private slotsHeld(): number {
    return first<{ n: number }>(this.sql, "SELECT coalesce(sum(granted), 0) AS n FROM slots WHERE granted > 0")!.n;
  }

  private waitingBatches(limit: number): string[] {
    return all<{ batch_id: string }>(this.sql, "SELECT batch_id FROM slots WHERE granted < wanted ORDER BY version LIMIT ?", limit).map((r) => r.batch_id);
  }

  /** Slots came free: ask batches that wait for some to claim again. */
  private async nudgeWaitingBatches(): Promise<void> {
    // Only after slots were freed (a batch that waits also retries by itself, every 30 s).
    if (!this.#slotsFreed) return;
    this.#slotsFreed = false;
    const free = this.slotCap() - this.slotsHeld();
    if (free <= 0) return;
    // Oldest waiters first, no more of them than there are free slots.
    for (const batchId of this.waitingBatches(Math.min(free, NUDGE_BATCHES))) {
      try {
        await this.env.BATCH.getByName(batchId).pump();
      } catch (err) {
        log("warn", "could not wake batch", { batchId, error: String(err) });
      }
    }
  }

  /** Applies pending migrations once per object lifetime (they are idempotent anyway). */
  private ensureSchema(): void {
    if (this.#schemaReady) return;
    migrate(this.sql, ACCOUNT_MIGRATIONS);
    this.#schemaReady = true;
  }

  private exists(): boolean {
    return tableExists(this.sql, "account") && first(this.sql, "SELECT 1 AS x FROM account") !== undefined;
  }

  /** Exists and is not closed (accounts made before migration v3 get the column on first write). */
  private isOpen(): boolean {
    if (!this.exists()) return false;
    this.ensureSchema();
    return first<{ closed_at: number | null }>(this.sql, "SELECT closed_at FROM account")!.closed_at === null;
  }

  private balances(): Balances {
    return first<Balances>(this.sql, "SELECT granted, balance, reserved, used, refunded FROM balances")!;
  }

  /** Reserves credits under a pending hold; the caller runs this inside a transaction. */
  private hold(key: string, batchId: string, purpose: "create" | "retry", amount: number): Ok<object> | Failure {
    const now = Date.now();
    const moved = this.move("reserve", amount, { key, batchId, note: purpose === "create" ? "batch created" : "failed items retried" });
    if (!moved.ok) return moved;
    this.sql.exec(
      "INSERT INTO holds (key, batch_id, purpose, amount, state, deadline, created_at) VALUES (?, ?, ?, ?, 'pending', ?, ?)",
      key, batchId, purpose, amount, now + this.holdTimeoutMs(), now,
    );
    return { ok: true };
  }

  /**
   * In a transaction: applies one batch's events in order and returns how many changed
   * something. Their settlements go through one Settlement, written once at the end.
   */
  private applyEvents(batchId: string, events: AccountEvent[]): number {
    const settlement = new Settlement(this.sql, batchId);
    let applied = 0;
    for (const event of events) if (this.applyEvent(settlement, event)) applied++;
    settlement.flush();
    return applied;
  }

  /** Returns true when the event changed something (false for a duplicate). */
  private applyEvent(settlement: Settlement, event: AccountEvent): boolean {
    const batchId = settlement.batchId;
    switch (event.kind) {
      case "confirm": {
        const hold = first<HoldRow>(this.sql, "SELECT * FROM holds WHERE key = ?", event.key);
        if (!hold) throw new Error(`confirm of unknown hold ${event.key}`);
        if (hold.state === "confirmed") return false;
        if (hold.state === "void") throw new Error(`confirm of void hold ${event.key}`);
        this.sql.exec("UPDATE holds SET state = 'confirmed', deadline = NULL WHERE key = ?", event.key);
        if (hold.purpose === "create") this.sql.exec("UPDATE batches SET visible = 1 WHERE batch_id = ?", batchId);
        return true;
      }
      case "void": {
        const hold = first<HoldRow>(this.sql, "SELECT * FROM holds WHERE key = ?", event.key);
        if (!hold) {
          // The reserve has not arrived (and now never may): remember the key as void.
          this.sql.exec(
            "INSERT INTO holds (key, batch_id, purpose, amount, state, created_at) VALUES (?, ?, 'tombstone', 0, 'void', ?)",
            event.key, batchId, Date.now(),
          );
          return true;
        }
        if (hold.state === "void") return false;
        if (hold.state === "confirmed") throw new Error(`void of confirmed hold ${event.key}`);
        this.sql.exec("UPDATE holds SET state = 'void', deadline = NULL WHERE key = ?", event.key);
        // The hold's state guards this refund: its key is new, or the books are wrong (refused).
        if (hold.amount !== 0) {
          settlement.release("refund", hold.amount, { key: `${event.key}:void`, itemId: null, note: "reservation released" }, "refuse");
        }
        if (hold.purpose === "create") {
          this.sql.exec("DELETE FROM slots WHERE batch_id = ?", batchId);
          this.sql.exec("DELETE FROM batches WHERE batch_id = ?", batchId);
          settlement.batchRemoved();
          this.sql.exec("DELETE FROM idempotency WHERE batch_id = ?", batchId);
        }
        return true;
      }
      case "consume":
        return settlement.release("consume", event.amount, { key: event.key, itemId: event.itemId, note: event.note ?? "item completed" }, "skip");
      case "refund":
        // A refund of nothing moves nothing and writes no ledger row (it counts unless its key is taken).
        if (event.amount === 0) return !first(this.sql, "SELECT 1 AS x FROM ledger WHERE idem_key = ?", event.key);
        return settlement.release("refund", event.amount, { key: event.key, itemId: event.itemId ?? null, note: event.note }, "skip");
      case "status":
        return this.updateIndex(batchId, event.version, event.snapshot);
      case "slots":
        this.claim(batchId, event.version, event.wanted);
        return true;
      case "webhook":
        return recordEvent(this.sql, event.url, event.event);
      case "forget":
        // forget reads the batch's reserved credits from its row: write the settlements so far first.
        settlement.flush();
        return this.forget(batchId);
    }
  }

  /**
   * Retention: the batch object is about to delete itself. Its index row stays as a
   * tombstone (status 'expired', hidden from listings); its holds, slots and
   * Idempotency-Keys go. The ledger keeps every row. Refused (so the batch keeps the event
   * and retries) while the books say the batch still holds credits.
   */
  private forget(batchId: string): boolean {
    const row = first<{ status: string; reserved: number }>(this.sql, "SELECT status, reserved FROM batches WHERE batch_id = ?", batchId);
    if (!row || row.status === "expired") return false; // already forgotten (or its tombstone is long gone)
    if (row.reserved !== 0) throw new Error(`forget of batch ${batchId}, which still holds ${row.reserved} credits`);
    if (first(this.sql, "SELECT 1 AS x FROM holds WHERE batch_id = ? AND state = 'pending'", batchId)) {
      throw new Error(`forget of batch ${batchId}, which has a pending hold`);
    }
    const slots = first<{ granted: number }>(this.sql, "SELECT granted FROM slots WHERE batch_id = ?", batchId)?.granted ?? 0;
    this.sql.exec("UPDATE batches SET status = 'expired', visible = 0 WHERE batch_id = ?", batchId);
    this.sql.exec("DELETE FROM holds WHERE batch_id = ?", batchId);
    this.sql.exec("DELETE FROM slots WHERE batch_id = ?", batchId);
    this.sql.exec("DELETE FROM idempotency WHERE batch_id = ?", batchId);
    this.sql.exec("DELETE FROM live_views WHERE batch_id = ?", batchId);
    if (slots > 0 && this.waitingBatches(1).length > 0) this.#slotsFreed = true;
    return true;
  }

  /**
   * Retention, from the alarm (which runs after every batch creation, so this keeps pace
   * with growth): tombstones older than TOMBSTONE_MS, and void holds of batches that were
   * never created (no index row) older than ABANDONED_HOLD_MS.
   */
  private purgeRetained(now: number): void {
    this.sql.exec(
      "DELETE FROM batches WHERE status = 'expired' AND coalesce(finished_at, created_at) <= ?",
      now - retentionMs(this.env) - TOMBSTONE_MS,
    );
    this.sql.exec(
      "DELETE FROM holds WHERE state = 'void' AND created_at <= ? AND batch_id NOT IN (SELECT batch_id FROM batches)",
      now - ABANDONED_HOLD_MS,
    );
  }

  private updateIndex(batchId: string, version: number, s: BatchIndexSnapshot): boolean {
    // A removed batch's tombstone never comes back to life (status 'expired' is final).
    const cursor = this.sql.exec(
      `UPDATE batches SET status = ?, completed = ?, failed = ?, cancelled = ?, finished_at = ?, version = ?
       WHERE batch_id = ? AND version < ? AND status != 'expired' RETURNING 1 AS x`,
      s.status, s.completed, s.failed, s.cancelled, s.finishedAt, version, batchId, version,
    );
    return cursor.toArray().length > 0;
  }

  /**
   * One credit movement: new balances and the ledger row, written together. For grants and
   * reservations; a batch's settlements (consume, refund) go through a Settlement instead.
   */
  private move(
    kind: MovementKind,
    amount: number,
    ref: { key: string; batchId?: string | null; itemId?: string | null; note: string },
  ): Ok<{ balances: Balances }> | Failure {
    const result = applyMovement(this.balances(), kind, amount);
    if (!result.ok) {
      return fail(result.code === "INSUFFICIENT_CREDITS" ? "INSUFFICIENT_CREDITS" : "VALIDATION_ERROR", result.message);
    }
    const b = result.next;
    this.sql.exec(
      "UPDATE balances SET granted = ?, balance = ?, reserved = ?, used = ?, refunded = ?",
      b.granted, b.balance, b.reserved, b.used, b.refunded,
    );
    this.sql.exec(
      `INSERT INTO ledger (idem_key, kind, amount, batch_id, item_id, note, balance_after, reserved_after, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ref.key, kind, amount, ref.batchId ?? null, ref.itemId ?? null, ref.note, b.balance, b.reserved, Date.now(),
    );
    return { ok: true, balances: b };
  }

  private holdTimeoutMs(): number {
    return positiveInt(this.env.RESERVATION_TIMEOUT_MS, 60_000);
  }

  private armAlarm(): void {
    const hold = first<{ t: number | null }>(this.sql, "SELECT min(deadline) AS t FROM holds WHERE state = 'pending'")?.t ?? null;
    const idem = first<{ t: number | null }>(this.sql, "SELECT min(created_at) AS t FROM idempotency")?.t ?? null;
    const nudge = this.#slotsFreed ? Date.now() : null;
    const webhook = tableExists(this.sql, "webhook_deliveries") ? nextDeliveryAt(this.sql) : null;
    this.ensureSchema(); // every source counts: setAlarm replaces the alarm another one armed
    const oldSecret = previousSecretExpiry(this.sql);
    const liveViews = nextLiveViewCloseAt(this.sql);
    const times = [hold, idem === null ? null : idem + IDEMPOTENCY_TTL_MS, nudge, webhook, oldSecret, liveViews].filter((t): t is number => t !== null);
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
      this.sql.exec("UPDATE account SET closed_at = coalesce(closed_at, ?)", now);
      const revoked = this.sql.exec("UPDATE api_keys SET revoked_at = ? WHERE revoked_at IS NULL RETURNING key_id", now).toArray().length;
      const views = endViewsOfKeys(this.sql, null, now + LIVE_CLOSE_RETRY_MS);
      return { closedAt: first<{ closed_at: number }>(this.sql, "SELECT closed_at FROM account")!.closed_at, keysRevoked: revoked, views };
    });
    if (views.length > 0) this.armAlarm();
    await this.closeLiveViews(views);
    return { ok: true, closedAt, keysRevoked, stopped: await this.stopAll() };
  }

  /**
   * Cancels every queued or running batch of the account, through each batch object's own
   * cancel (so the per-item rule and refunds are the same as one cancel), a few at a time.
   * Safe to call twice, even at once: each batch object lets exactly one cancel win.
   */
  async stopAll(): Promise<StopAllResult> {
    if (!this.exists()) return { stopped: 0, failed: 0, cancelledItems: 0, creditsRefunded: 0, batchIds: [] };
    const accountId = first<{ id: string }>(this.sql, "SELECT id FROM account")!.id;
    // Not-yet-visible batches too: a batch whose confirmation is still in flight is active.
    const ids = all<{ batch_id: string }>(
      this.sql, "SELECT batch_id FROM batches WHERE status IN ('pending', 'running') ORDER BY created_at",
    ).map((r) => r.batch_id);
    const outcomes = await mapBounded(ids, STOP_ALL_CONCURRENCY, async (batchId) => {
      try {
        const r = await this.env.BATCH.getByName(batchId).cancel(accountId);
        if (r.ok) return { batchId, kind: "stopped" as const, items: r.cancelledItems, credits: r.creditsRefunded };
        // Finished meanwhile, or never created (its hold was released): nothing to stop.
        return { batchId, kind: r.code === "ALREADY_TERMINAL" || r.code === "NOT_FOUND" ? ("skipped" as const) : ("failed" as const), items: 0, credits: 0 };
      } catch (err) {
        log("warn", "stop-all: cancel failed", { batchId, error: String(err) });
        return { batchId, kind: "failed" as const, items: 0, credits: 0 };
      }
    });
    const stopped = outcomes.filter((o) => o.kind === "stopped");
    return {
      stopped: stopped.length,
      failed: outcomes.filter((o) => o.kind === "failed").length,
      cancelledItems: stopped.reduce((n, o) => n + o.items, 0),
      creditsRefunded: stopped.reduce((n, o) => n + o.credits, 0),
      batchIds: stopped.map((o) => o.batchId),
    };
  }
}

export interface StopAllResult {
  stopped: number;
  failed: number;
  cancelledItems: number;
  creditsRefunded: number;
  batchIds: string[];
}

/** Batch cancels in flight at once during stop-all. */
const STOP_ALL_CONCURRENCY = 16;
