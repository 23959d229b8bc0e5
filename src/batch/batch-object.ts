/**
 * One object per batch: the only place where a batch's or an item's state changes.
 *
 * Every transition reads, decides (src/domain/batch-machine.ts) and writes in one
 * synchronous transaction, with no await in between, so cancel and item-start are
 * strictly ordered and can never race. Effects on the account (reserve, consume,
 * refund, index updates) are rows of the outbox to the account written in that same
 * transaction and delivered afterwards, inline for user-facing calls and by the alarm
 * otherwise; queue messages likewise go through the outbox to the queue.
 */
import { DurableObject } from "cloudflare:workers";
import { type AccountEvent, type BatchIndexSnapshot, type HoldResolution, holdKeys } from "../domain/account-events";
import {
  batchStatusFor,
  decideCancel,
  decideRequeue,
  decideRetry,
  decideSettle,
  decideStart,
  isFinished,
  moveItems,
  type SettleOutcome,
} from "../domain/batch-machine";
import { chargeFor, type Charge } from "../domain/charging";
import { batchNotFound, fail, type Failure, type Ok } from "../domain/errors";
import {
  type ItemError,
  MAX_ITEMS_PER_CALL,
  type QueueSend,
  type ResultMeta,
  type SettleReport,
  type SettleResult,
  type StartRequest,
  type StartResult,
} from "../domain/executor-contract";
import type { ItemLabel } from "../domain/item-inputs";
import { BATCH_HOLD } from "../domain/holds";
import { LIMITS } from "../domain/limits";
import { ABANDONED_HOLD_MS } from "../domain/retention-policy";
import { retryDelayMs } from "../domain/retry-delay";
import type { OutputFormat } from "../domain/pricing";
import type { ScrapeOptions } from "../domain/scrape-options";
import type { ItemCounts, ItemStatus } from "../domain/states";
import { AlarmClock } from "../durable/alarm-clock";
import { nextAlarm, NOTHING_DUE } from "../domain/next-alarm";
import { first, migrate, tableExists } from "../durable/sql";
import type { Env } from "../env";
import { eventsFor } from "../webhooks/events";
import {
  acceptLive,
  answerLive,
  broadcast,
  closeLive,
  closeLiveOfKeys,
  type KeyEnd,
  LIVE_ACCOUNT_HEADER,
  LIVE_KEY_HASH_HEADER,
  LIVE_KEY_HEADER,
} from "./live";
import { admitClaim, checkCopy, endCopies } from "./key-copies";
import { ReadCache } from "./read-cache";
import { accountAnswered, PollBudget, type PollLimited, pollRate } from "./poll-budget";
import { KEY_UNCHECKED, type KeyClaim, type KeyUnchecked } from "../domain/key-claim";
import { type BatchOptions, eraseCookiesIfEnded, leaseOptions, retryRefusal, writeOptions } from "./options";
import {
  afterSlotClaim,
  DISPATCH_TIMEOUT_MS,
  dispatch,
  dispatchPaused,
  type FlowHost,
  fitSlots,
  reclaimLostDispatches,
  wantedSlots,
} from "./flow";
import {
  earliestLeaseEnd,
  expiredLeases,
  failedIdxs,
  insertItems,
  itemById,
  markFinished,
  hasStoredPending,
  SWEEP_CHUNK_ROWS,
  sweepCancelled,
  markRequeued,
  markRetried,
  markRunning,
  oldestDispatchDue,
} from "./item-rows";
import {
  abandonHoldRow,
  dropReserving,
  holdState,
  insertHold,
  isReserving,
  reservingSince,
  retryHoldCount,
  setHoldState,
} from "./hold-rows";
import { Outbox } from "./outbox";
import { batchState, type BatchRow, countsOf, itemState, type ItemRow } from "./rows";
import {
  absentBatch,
  clearAbandonedHolds,
  isExpiring,
  removalDueAt,
  removeIfDue,
  type RetentionHost,
} from "./retention";
import { allItems, type ItemEntry, itemsInState, itemsPage } from "./item-pages";
import { BATCH_MIGRATIONS } from "./schema";
import { type BatchView, batchView, type ItemView, itemView } from "./views";
import { log } from "../lib/log";
import { positiveInt } from "../lib/positive-int";

export interface CreateBatchInput {
  batchId: string;
  accountId: string;
  holdKey: string;
  urls: string[];
  /** Each item's customId and metadata, in the order of `urls` (absent or null: none has any). */
  labels?: ItemLabel[] | null;
  output: OutputFormat;
  selectors: Record<string, string> | null;
  maxConcurrency: number;
  creditsPerItem: number;
  /** Account-wide slots the account granted this batch along with its credits. */
  slotsGranted: number;
  /** Where to send this batch's events (checked by the route). */
  webhookUrl?: string | null;
  /** Main content only, AI extraction, sealed cookies (src/batch/options.ts). Absent: none. */
  mainContentOnly?: BatchOptions["mainContentOnly"];
  ai?: BatchOptions["ai"];
  cookies?: BatchOptions["cookies"];
  /** How pages are fetched and built (checked by the route); null or absent: the defaults. */
  scrapeOptions?: ScrapeOptions | null;
}

export class BatchObject extends DurableObject<Env> {
  private readonly sql = this.ctx.storage.sql;
  /** The outbox to the account object (table `outbox`): holds, charges, refunds, slots, index, webhooks. */
  readonly toAccount = new Outbox<AccountEvent>(this.sql, "outbox", (events) => this.sendToAccount(events));
  /** The outbox to the queue (table `sends`): one dispatch message per item to run. */
  readonly toQueue = new Outbox<QueueSend>(this.sql, "sends", (events) => this.sendToQueue(events), 100);
  /** The account object this batch settles with. A field, so fault tests can wrap it. */
  accountStub = (accountId: string) => this.env.ACCOUNT.getByName(accountId);
  /** Rows one step of a cancel's sweep rewrites. A field, so tests can sweep a small batch in several steps. */
  sweepChunkRows = SWEEP_CHUNK_ROWS;
  /** Polls per key id, in memory (src/batch/poll-budget.ts). A field, so tests can give it a clock or a rate. */
  polls = new PollBudget(pollRate(this.env));
  /** The batch row and polls' answers, kept while storage does not change (memory only). */
  private readonly reads = new ReadCache<BatchRow>(this.sql);
  private readonly clock = new AlarmClock(this.ctx.storage);
  /** What flow control (src/batch/flow.ts) works with. */
  private readonly flow: FlowHost = {
    sql: this.sql,
    env: this.env,
    toAccount: this.toAccount,
    toQueue: this.toQueue,
    writeBatch: (row, patch) => this.writeBatch(row, patch),
  };
  /** Once true, stays true until retention empties storage. */
  #hasBatch = false;

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
      if (holdState(this.sql, input.holdKey) === BATCH_HOLD.abandoned) {
        return fail(
          "RESERVATION_EXPIRED",
          "The credit reservation for this batch expired before it was created; send the request again.",
        );
      }
      const now = Date.now();
      const total = input.urls.length;
      this.sql.exec(
        `INSERT INTO batch (id, batch_id, account_id, status, output, selectors, max_concurrency, credits_per_item, total,
           pending, running, completed, failed, cancelled, credits_reserved, credits_used, credits_refunded, created_at, version)
         VALUES (1, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, 0, 0, 0, 0, ?, 0, 0, ?, 1)`,
        input.batchId,
        input.accountId,
        input.output,
        input.selectors ? JSON.stringify(input.selectors) : null,
        input.maxConcurrency,
        input.creditsPerItem,
        total,
        total,
        total * input.creditsPerItem,
        now,
      );
      insertItems(this.sql, input.urls, input.labels ?? null);
      this.sql.exec(
        "UPDATE batch SET slots_granted = ?, slots_version = 1, webhook_url = ?, scrape_options = ? WHERE id = 1",
        input.slotsGranted,
        input.webhookUrl ?? null,
        input.scrapeOptions ? JSON.stringify(input.scrapeOptions) : null,
      );
      writeOptions(this.sql, input);
      insertHold(this.sql, {
        key: input.holdKey,
        state: BATCH_HOLD.applied,
        amount: total * input.creditsPerItem,
        createdAt: now,
      });
      this.toAccount.add({ kind: "confirm", key: input.holdKey });
      const row = this.row()!;
      this.toAccount.add(
        { kind: "status", version: row.version, snapshot: snapshotOf(row) },
        { replacesSameKind: true },
      );
      fitSlots(this.flow, dispatch(this.flow, row, now));
      return { ok: true, batch: batchView(row), replay: false };
    });
    if (result.ok && !result.replay) await this.deliver();
    return result;
  }

  /** A page of items after `cursor`; `limit` null: every item (src/batch/item-pages.ts). */
  async get(
    accountId: string,
    cursor: number,
    limit: number | null,
  ): Promise<Ok<{ batch: BatchView; items: ItemView[]; nextCursor: string | null }> | Failure> {
    const row = this.owned(accountId);
    if (!row) return this.absent(accountId); // retention: expired, or never theirs
    const page = limit === null ? allItems(this.sql, row) : itemsPage(this.sql, row, cursor, limit);
    return { ok: true, batch: batchView(row), ...page };
  }

  // ---- reads with a key claim (src/batch/key-copies.ts): one object call, the key checked here ----

  /** `get`, the key checked from this object's copy (the account asked only the first time it sees the key). */
  async getAs(
    claim: KeyClaim,
    cursor: number,
    limit: number | null,
  ): Promise<Ok<{ batch: BatchView; items: ItemView[]; nextCursor: string | null }> | Failure | KeyUnchecked> {
    const access = await this.admitPoll(claim);
    if (access === "account") return accountAnswered(await this.get(claim.accountId, cursor, limit));
    return access === true ? this.get(claim.accountId, cursor, limit) : access;
  }

  /**
   * `getAs`, answered as the status route's JSON body (`{ ...batch, items, nextCursor }`):
   * built once per state of storage and kept for the next poll (src/batch/read-cache.ts).
   */
  async getJsonAs(
    claim: KeyClaim,
    cursor: number,
    limit: number | null,
  ): Promise<Ok<{ json: string }> | Failure | KeyUnchecked> {
    const access = await this.admitPoll(claim);
    if (access === "account") return accountAnswered(await this.getJson(claim.accountId, cursor, limit));
    return access === true ? this.getJson(claim.accountId, cursor, limit) : access;
  }

  /** `get` as the status route's JSON body. */
  async getJson(accountId: string, cursor: number, limit: number | null): Promise<Ok<{ json: string }> | Failure> {
    const row = this.owned(accountId);
    if (!row) return this.absent(accountId); // retention: expired, or never theirs
    const json = this.reads.page(`${cursor}:${limit}`, () => {
      const page = limit === null ? allItems(this.sql, row) : itemsPage(this.sql, row, cursor, limit);
      return JSON.stringify({ ...batchView(row), items: page.items, nextCursor: page.nextCursor });
    });
    return { ok: true, json };
  }

  /** `resultLocation`, the key checked from this object's copy. */
  async resultLocationAs(
    claim: KeyClaim,
    itemId: string,
  ): Promise<Ok<{ key: string; output: OutputFormat }> | Failure | KeyUnchecked> {
    const access = await this.admitPoll(claim);
    if (access === "account") return accountAnswered(await this.resultLocation(claim.accountId, itemId));
    return access === true ? this.resultLocation(claim.accountId, itemId) : access;
  }

  /**
   * The account ended these keys (revoked, expired, account closed): their copies become
   * markers, and live views they opened close. Idempotent; an object with no batch has none.
   */
  dropKeyCopies(keyIds: string[], why: KeyEnd): number {
    if (!this.hasBatch()) return 0;
    endCopies(this.sql, keyIds, why, Date.now());
    return closeLiveOfKeys(this.ctx, keyIds, why);
  }

  /**
   * `admit`, then one poll from the key's budget: only a key admitted here spends one (a
   * refused key stays 403). "account": admitted by the account, no copy kept here (src/batch/poll-budget.ts).
   */
  private async admitPoll(claim: KeyClaim): Promise<true | "account" | Failure | PollLimited | KeyUnchecked> {
    const access = await this.admit(claim);
    return access === "copy" ? this.polls.take(claim.keyId) : access;
  }

  /**
   * Whether `claim` may read this batch, and on whose word ("copy" or "account",
   * src/batch/key-copies.ts); KEY_UNCHECKED when the batch is not its account's (or not here).
   */
  private async admit(claim: KeyClaim): Promise<"copy" | "account" | Failure | KeyUnchecked> {
    const row = this.owned(claim.accountId);
    if (!row) return KEY_UNCHECKED;
    const batchId = row.batch_id;
    const admitted = await admitClaim(this.sql, claim, (c) =>
      this.accountStub(c.accountId).lendKeyCopy(c.keyId, c.keyHash, batchId),
    );
    return admitted ?? fail("INVALID_API_KEY", "Invalid or expired API key.");
  }

  /** A page of the items in one state, in order (src/batch/item-pages.ts): compatible surfaces read these. */
  async itemsIn(
    accountId: string,
    statuses: ItemStatus[],
    cursor: number,
    limit: number,
  ): Promise<Ok<{ batch: BatchView; entries: ItemEntry[]; nextCursor: string | null }> | Failure> {
    const row = this.owned(accountId);
    if (!row) return this.absent(accountId); // retention: expired, or never theirs
    return { ok: true, batch: batchView(row), ...itemsInState(this.sql, row, statuses, cursor, limit) };
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
  async cancel(
    accountId: string,
  ): Promise<Ok<{ cancelledItems: number; creditsRefunded: number; batch: BatchView }> | Failure> {
    if (!this.owned(accountId)) return this.absent(accountId); // retention: expired, or never theirs
    const result = this.ctx.storage.transactionSync(
      (): Ok<{ cancelledItems: number; creditsRefunded: number; batch: BatchView }> | Failure => {
        const row = this.owned(accountId);
        if (!row) return batchNotFound();
        const decision = decideCancel(batchState(row));
        if (decision.kind === "reject") return fail(decision.code, decision.message);
        const now = Date.now();
        // No item row is written: the pending ones read `cancelled` from now on (item-rows.ts),
        // and the alarm rewrites them in chunks (the sweep). Counts and credits come from the row.
        const counts = moveItems(countsOf(row), "pending", "cancelled", decision.cancelledItems);
        if (decision.creditsRefunded > 0) {
          this.toAccount.add({
            kind: "refund",
            key: `${row.batch_id}:cancel`,
            amount: decision.creditsRefunded,
            note: `batch cancelled: ${decision.cancelledItems} pending items refunded`,
            items: decision.cancelledItems,
          });
        }
        const next = fitSlots(
          this.flow,
          this.saveCounts(row, counts, now, {
            status: "cancelled",
            cancelled_at: now,
            credits_refunded: row.credits_refunded + decision.creditsRefunded,
            queued: 0,
          }),
        );
        return {
          ok: true,
          cancelledItems: decision.cancelledItems,
          creditsRefunded: decision.creditsRefunded,
          batch: batchView(next),
        };
      },
    );
    // deliver() arms the sweep's alarm (due now) before it awaits the account.
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
    const plan = this.ctx.storage.transactionSync(
      (): Ok<{ key: string; idxs: number[]; amount: number; batchId: string }> | Failure => {
        const row = this.owned(accountId);
        if (!row) return batchNotFound();
        this.abandonStaleReservations(Date.now());
        const decision = decideRetry(batchState(row), isReserving(this.sql));
        if (decision.kind === "reject") return fail(decision.code, decision.message);
        const refused = retryRefusal(row);
        if (refused) return refused;
        const idxs = failedIdxs(this.sql);
        const key = holdKeys.retry(row.batch_id, retryHoldCount(this.sql) + 1);
        const amount = idxs.length * row.credits_per_item;
        insertHold(this.sql, { key, state: BATCH_HOLD.reserving, amount, createdAt: Date.now(), itemIdxs: idxs });
        return { ok: true, key, idxs, amount, batchId: row.batch_id };
      },
    );
    if (!plan.ok) return plan;

    const reserved = await this.accountStub(accountId)
      .reserveHold({ key: plan.key, batchId: plan.batchId, amount: plan.amount })
      .catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
    if (reserved instanceof Error) {
      // Unknown whether the account took it: give up the hold, and tell the account so.
      log("warn", "retry reservation failed", { key: plan.key, error: String(reserved) });
      this.abandonHold(plan.key);
      await this.deliver();
      return fail("UNAVAILABLE", "Could not reserve credits for the retry; try again.");
    }
    if (!reserved.ok) {
      dropReserving(this.sql, plan.key);
      return fail(reserved.code, reserved.message);
    }

    const result = this.ctx.storage.transactionSync((): Ok<{ retriedCount: number }> | Failure => {
      const row = this.row()!;
      if (holdState(this.sql, plan.key) !== BATCH_HOLD.reserving || row.status === "cancelled") {
        this.abandonHold(plan.key);
        return row.status === "cancelled"
          ? fail("BATCH_CANCELLED", "The batch was cancelled while the retry was being prepared.")
          : fail("RESERVATION_EXPIRED", "The credit reservation for the retry expired; try again.");
      }
      markRetried(this.sql, plan.idxs);
      const counts = moveItems(countsOf(row), "failed", "pending", plan.idxs.length);
      setHoldState(this.sql, plan.key, BATCH_HOLD.applied);
      this.toAccount.add({ kind: "confirm", key: plan.key });
      const now = Date.now();
      const next = this.saveCounts(row, counts, now, {
        credits_reserved: row.credits_reserved + plan.amount,
        finished_at: null,
      });
      fitSlots(this.flow, dispatch(this.flow, next, now));
      return { ok: true, retriedCount: plan.idxs.length };
    });
    await this.deliver();
    // A finished batch gave its slots back: ask for them again now rather than at the next alarm.
    if (result.ok) await this.pump();
    return result;
  }

  // ---- executor contract --------------------------------------------------------------------

  /**
   * Grants leases, each in order as `startItem` would. One transaction for the whole group:
   * a cancel comes before all of them (all dropped) or after all of them (all run and are
   * charged). The queue consumer asks once per queue batch.
   */
  async startItems(requests: readonly StartRequest[]): Promise<StartResult[]> {
    // A caller's bug, answered (not thrown) so it cannot break the object: nothing starts.
    if (requests.length > MAX_ITEMS_PER_CALL) return requests.map(() => ({ action: "drop", reason: "TOO_MANY_ITEMS" }));
    if (!this.hasBatch()) return requests.map(() => ({ action: "drop", reason: "ITEM_NOT_FOUND" }));
    const started = this.ctx.storage.transactionSync(() => {
      const stored = this.row()!;
      let row = stored;
      const now = Date.now();
      const leaseExpiresAt = now + LIMITS.leaseMs;
      const selectors = row.selectors === null ? null : (JSON.parse(row.selectors) as Record<string, string>);
      const options = leaseOptions(row);
      const scrapeOptions = row.scrape_options === null ? null : (JSON.parse(row.scrape_options) as ScrapeOptions);
      const results = requests.map(({ itemId, dispatch }): StartResult => {
        const item = this.item(row, itemId);
        const decision = decideStart(batchState(row), itemState(item), dispatch);
        if (decision.kind === "drop" || !item)
          return { action: "drop", reason: decision.kind === "drop" ? decision.reason : "ITEM_NOT_FOUND" };
        markRunning(this.sql, item.idx, decision.attempt, leaseExpiresAt, now);
        row = this.advance(row, moveItems(countsOf(row), "pending", "running"), now, {
          started_at: row.started_at ?? now,
          queued: row.queued - (item.dispatched_at === null ? 0 : 1),
        });
        return {
          action: "run",
          batchId: row.batch_id,
          itemId,
          attempt: decision.attempt,
          url: item.url,
          output: row.output,
          selectors,
          options: scrapeOptions,
          leaseExpiresAt,
          ...options,
        };
      });
      return { results, row: this.commit(stored, row), leaseExpiresAt };
    });
    if (started.results.some((r) => r.action === "run")) await this.wake(started.row, started.leaseExpiresAt);
    return started.results;
  }

  /**
   * Grants a lease if the batch is not cancelled and the item is pending (and, with a
   * dispatch token, if the message is the item's latest dispatch); else: drop the work.
   */
  async startItem(itemId: string, dispatchToken?: number): Promise<StartResult> {
    const [result] = await this.startItems([{ itemId, dispatch: dispatchToken }]);
    return result!;
  }

  /**
   * Settles items, each as completeItem or failItem would, in one transaction: the batch
   * row, its index snapshot and the refill of freed slots are written once for the group.
   * The consumer sends the settlements that came in while its previous call was out.
   */
  async settleItems(reports: readonly SettleReport[]): Promise<SettleResult[]> {
    // A caller's bug, answered (not thrown) so it cannot break the object: nothing settles.
    if (reports.length > MAX_ITEMS_PER_CALL)
      return reports.map(() => ({ ok: true, outcome: "ignored", reason: "TOO_MANY_ITEMS" }));
    if (!this.hasBatch()) return reports.map(() => ({ ok: true, outcome: "ignored", reason: "ITEM_NOT_FOUND" }));
    const settled = this.ctx.storage.transactionSync(() => {
      const stored = this.row()!;
      let row = stored;
      const now = Date.now();
      const answers = reports.map((asked): SettleResult => {
        const report = keepable(asked);
        const item = this.item(row, report.itemId);
        const decision = decideSettle(itemState(item), report.attempt, report.outcome);
        if (decision.kind === "ignore") return { ok: true, outcome: "ignored", reason: decision.reason };
        if (decision.kind === "duplicate" || !item) return { ok: true, outcome: "duplicate" };
        const payload =
          report.outcome === "completed"
            ? { result: report.json, error: null, meta: report.meta ?? {} }
            : { result: null, error: JSON.stringify(report.error), meta: report.meta ?? {} };
        if (
          report.outcome === "failed" &&
          decideRequeue(itemState(item)!, { code: report.error.code, retryable: report.retryable }, row.status)
        ) {
          const delay = retryDelayMs(
            item.attempts,
            report.retryAfterSeconds ?? 0,
            positiveInt(this.env.RETRY_BASE_DELAY_MS, 2000),
          );
          row = this.requeue(row, item, now, payload.error, delay);
          return { ok: true, outcome: "requeued" };
        }
        const charge = chargeFor(report.outcome, report.outcome === "failed" ? report.error.code : null);
        row = this.finishItem(row, item, report.outcome, charge, payload, now);
        return { ok: true, outcome: "settled" };
      });
      // Freed slots are refilled once, after the group.
      if (row !== stored) row = fitSlots(this.flow, dispatch(this.flow, this.commit(stored, row), now));
      return { answers, row, changed: row !== stored };
    });
    if (settled.changed) await this.wake(settled.row, null);
    return settled.answers;
  }

  /** Settles a running item as completed: its reserved credits are consumed. */
  async completeItem(itemId: string, attempt: number, result: unknown, meta: ResultMeta = {}): Promise<SettleResult> {
    const [settled] = await this.settleItems([{ itemId, attempt, outcome: "completed", result, meta }]);
    return settled!;
  }

  /**
   * Settles a running item as failed: its credits are refunded (a charged failure's are
   * consumed: src/domain/charging.ts). A retryable failure with attempts left puts the
   * item back to pending instead (no credit moves).
   */
  async failItem(
    itemId: string,
    attempt: number,
    error: ItemError,
    options: { retryable?: boolean; retryAfterSeconds?: number; meta?: ResultMeta } = {},
  ): Promise<SettleResult> {
    const [settled] = await this.settleItems([{ itemId, attempt, outcome: "failed", error, ...options }]);
    return settled!;
  }

  /** Where a completed item's stored result is, for its owner only. */
  async resultLocation(
    accountId: string,
    itemId: string,
  ): Promise<Ok<{ key: string; output: OutputFormat }> | Failure> {
    const row = this.owned(accountId);
    if (!row) return this.absent(accountId); // retention: expired, or never theirs
    const item = this.item(row, itemId);
    if (item?.status !== "completed" || item.result_key === null) {
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
    if (holdState(this.sql, key) === BATCH_HOLD.applied) return BATCH_HOLD.applied;
    abandonHoldRow(this.sql, key, Date.now());
    // retention: an object that will never hold a batch forgets this hold later (clearAbandonedHolds).
    if (!this.hasBatch()) void this.clock.set(Date.now() + ABANDONED_HOLD_MS);
    return BATCH_HOLD.abandoned;
  }

  /**
   * Asks the account for more slots when the batch has more work than its grant, then
   * dispatches into them. The account calls this when slots come free elsewhere.
   */
  async pump(): Promise<void> {
    if (!this.hasBatch() || dispatchPaused(this.env)) return;
    const before = this.row()!;
    const wanted = wantedSlots(before);
    if (wanted <= before.slots_granted) return;
    const version = before.slots_version + 1;
    this.sql.exec("UPDATE batch SET slots_version = ? WHERE id = 1", version);
    const granted = await this.accountStub(before.account_id)
      .claimSlots(before.batch_id, version, wanted)
      .catch((err: unknown) => {
        log("warn", "slot claim failed", { batchId: before.batch_id, error: String(err) });
        return null;
      });
    this.ctx.storage.transactionSync(() => {
      const row = this.row()!;
      const now = Date.now();
      if (row.slots_version !== version) return; // a newer claim or release went out meanwhile
      const next = this.writeBatch(row, afterSlotClaim(row, granted, wanted, now));
      fitSlots(this.flow, dispatch(this.flow, next, now));
    });
    await this.deliver();
  }

  /** Takes back expired leases and delivers the outboxes; re-arms itself while work remains. */
  override async alarm(): Promise<void> {
    this.clock.fired();
    // retention (src/batch/retention.ts): no batch here but a refused hold, or a finished batch past its time.
    if (!this.hasBatch()) return clearAbandonedHolds(this.ctx.storage, this.clock);
    if (await removeIfDue(this.retentionHost())) return;
    const now = Date.now();
    this.sweepStep();
    this.expireLeases(now);
    this.ctx.storage.transactionSync(() => {
      fitSlots(this.flow, dispatch(this.flow, reclaimLostDispatches(this.flow, this.row()!, now), now));
    });
    await this.deliver();
    await this.pump();
  }

  // ---- internals ------------------------------------------------------------------------------
  // Transitions run inside a transaction and pass the batch row along: `advance` works out
  // the row after one step (in JavaScript), `commit` writes it once for a group of steps.

  /**
   * Running -> completed or failed, its credits consumed or refunded (`charge`, from
   * src/domain/charging.ts: a failure at an extraction limit is charged), with its event
   * to the account. Returns the advanced row.
   */
  private finishItem(
    row: BatchRow,
    item: ItemRow,
    outcome: SettleOutcome,
    charge: Charge,
    payload: { result: string | null; error: string | null; meta: ResultMeta },
    now: number,
  ): BatchRow {
    const price = row.credits_per_item;
    const charged = charge === "consume" ? price : 0;
    markFinished(this.sql, item.idx, outcome, payload, charged, now);
    const key = `${row.batch_id}:${item.id}:r${item.round}:${charge}`;
    if (charge === "consume") {
      this.toAccount.add({
        kind: "consume",
        key,
        amount: price,
        itemId: item.id,
        note: outcome === "completed" ? "item completed" : "item failed, charged",
        outcome,
        durationMs: payload.meta.durationMs ?? null,
      });
    } else {
      const durationMs = payload.meta.durationMs ?? null;
      this.toAccount.add({ kind: "refund", key, amount: price, itemId: item.id, note: "item failed", durationMs });
    }
    const patch =
      charge === "consume"
        ? { credits_used: row.credits_used + price }
        : { credits_refunded: row.credits_refunded + price };
    return this.advance(row, moveItems(countsOf(row), "running", outcome), now, patch, {
      item,
      outcome,
      error: payload.error,
    });
  }

  /**
   * A cancel's sweep: one bounded chunk of the item rows still stored `pending` gets what a
   * linear cancel would have written. One transaction, so an eviction between two steps
   * loses nothing; armAlarm() brings the alarm back while rows remain.
   */
  private sweepStep(): void {
    this.ctx.storage.transactionSync(() => {
      const cancelledAt = this.row()!.cancelled_at;
      if (cancelledAt !== null) sweepCancelled(this.sql, cancelledAt, this.sweepChunkRows);
    });
  }

  /** Items whose consumer vanished go back to pending, or fail after the last attempt. */
  private expireLeases(now: number): void {
    this.ctx.storage.transactionSync(() => {
      const stored = this.row()!;
      const expired = expiredLeases(this.sql, stored, now, 500);
      if (expired.length === 0) return;
      let row = stored;
      for (const item of expired) {
        const error = JSON.stringify({ code: "LEASE_EXPIRED", message: "The item's executor stopped answering." });
        row =
          item.attempts < LIMITS.maxAttempts && row.status !== "cancelled"
            ? this.requeue(row, item, now, error, 0)
            : this.finishItem(row, item, "failed", "refund", { result: null, error, meta: {} }, now);
      }
      this.commit(stored, row);
    });
  }

  /** Running -> pending again (a transient failure or a lost lease), to run after `delayMs`. Returns the advanced row. */
  private requeue(row: BatchRow, item: ItemRow, now: number, error: string | null, delayMs: number): BatchRow {
    markRequeued(this.sql, item.idx, error, delayMs > 0 ? now + delayMs : null);
    return this.advance(row, moveItems(countsOf(row), "running", "pending"), now);
  }

  /**
   * One step: new counts (and `patch`), the status they imply, finishedAt and a new
   * version, worked out from `before`. Watchers hear of it now; nothing is written.
   */
  private advance(
    before: BatchRow,
    counts: ItemCounts,
    now: number,
    patch: Partial<BatchRow> = {},
    settled?: { item: ItemRow; outcome: SettleOutcome; error: string | null },
  ): BatchRow {
    const current = { ...before, ...patch };
    const after: BatchRow = eraseCookiesIfEnded({
      ...current,
      ...counts,
      status: batchStatusFor(current.status, counts, current.started_at !== null),
      finished_at: isFinished(counts) ? (current.finished_at ?? now) : null,
      version: before.version + 1,
    });
    if (after.status !== before.status) logTransition(before, after); // observability
    this.notify(before, after, settled);
    return after;
  }

  /** Writes `after` over `stored` (the row as stored), and the account's index snapshot when it changed. */
  private commit(stored: BatchRow, after: BatchRow): BatchRow {
    if (after === stored) return stored;
    const changed: Partial<BatchRow> = {};
    for (const key of Object.keys(after) as (keyof BatchRow)[]) {
      if (after[key] !== stored[key]) Object.assign(changed, { [key]: after[key] });
    }
    const snapshot = snapshotOf(after);
    if (JSON.stringify(snapshot) !== JSON.stringify(snapshotOf(stored))) {
      this.toAccount.add({ kind: "status", version: after.version, snapshot }, { replacesSameKind: true });
    }
    return this.writeBatch(stored, changed);
  }

  /** `advance` and `commit` for a single step. */
  private saveCounts(before: BatchRow, counts: ItemCounts, now: number, patch: Partial<BatchRow> = {}): BatchRow {
    return this.commit(before, this.advance(before, counts, now, patch));
  }

  /** One UPDATE of the named columns (names from this file, never from input). Returns the row as now stored. */
  private writeBatch(row: BatchRow, patch: Partial<BatchRow>): BatchRow {
    const columns = Object.keys(patch) as (keyof BatchRow)[];
    if (columns.length === 0) return row;
    this.sql.exec(
      `UPDATE batch SET ${columns.map((c) => `${c} = ?`).join(", ")} WHERE id = 1`,
      ...columns.map((c) => patch[c] as SqlStorageValue),
    );
    return { ...row, ...patch };
  }

  /**
   * Everyone who watches transitions: live WebSocket clients, and the batch's webhook
   * (its events travel through the outbox to the account; the account signs and delivers them).
   */
  private notify(
    before: BatchRow,
    after: BatchRow,
    settled?: { item: ItemRow; outcome: SettleOutcome; error: string | null },
  ): void {
    broadcast(this.ctx, () => {
      const item = settled ? this.item(after, settled.item.id) : undefined;
      return { type: "batch", batch: batchView(after), ...(item ? { item: itemView(item, after.batch_id) } : {}) };
    });
    if (after.webhook_url === null) return;
    const settledItem = settled && {
      id: settled.item.id,
      url: settled.item.url,
      customId: settled.item.custom_id ?? null,
      metadata: settled.item.metadata == null ? null : (JSON.parse(settled.item.metadata) as Record<string, unknown>),
      outcome: settled.outcome,
      error: settled.error === null ? null : (JSON.parse(settled.error) as ItemError),
    };
    for (const event of eventsFor(before, after, settledItem))
      this.toAccount.add({ kind: "webhook", url: after.webhook_url, event });
  }

  /**
   * A retry's hold left `reserving` by a reset (the object died while awaiting the account)
   * would block retries for ever: past the reservation timeout it is abandoned, and the
   * account told to release it (or to refuse it, should the reservation still arrive).
   */
  private abandonStaleReservations(now: number): void {
    const timeout = positiveInt(this.env.RESERVATION_TIMEOUT_MS, 60_000);
    for (const key of reservingSince(this.sql, now - timeout)) {
      setHoldState(this.sql, key, BATCH_HOLD.abandoned);
      this.toAccount.add({ kind: "void", key });
    }
  }

  /** Abandons a hold this batch will not apply, and tells the account to release it. */
  private abandonHold(key: string): void {
    this.ctx.storage.transactionSync(() => {
      setHoldState(this.sql, key, BATCH_HOLD.abandoned);
      this.toAccount.add({ kind: "void", key });
    });
  }

  /** Sends both outboxes now; on failure the alarm retries with backoff. */
  private async deliver(): Promise<void> {
    // The alarm is the retry: armed for all that is due (a cancel's sweep now, events within
    // the settlement window) before the first await on the account or the queue, with no
    // await since the caller's commit, so a reset while they are awaited loses nothing.
    await this.armAlarm();
    const [accountDone, queueDone] = await Promise.all([this.toAccount.flush(), this.toQueue.flush()]);
    const delivered = accountDone && queueDone;
    this.sql.exec(
      "UPDATE batch SET outbox_failures = ? WHERE id = 1",
      delivered ? 0 : (this.row()?.outbox_failures ?? 0) + 1,
    );
    await this.armAlarm();
  }

  private async sendToAccount(events: AccountEvent[]): Promise<void> {
    const row = this.row();
    if (!row) return;
    const applied = await this.accountStub(row.account_id).applyBatchEvents(row.batch_id, events);
    if (!applied.ok) throw new Error(`account refused events: ${applied.message}`);
  }

  private async sendToQueue(sends: QueueSend[]): Promise<void> {
    await this.env.SCRAPE_QUEUE.sendBatch(
      sends.map((s) => ({ body: s.body, contentType: "json" as const, delaySeconds: s.delaySeconds })),
    );
  }

  /**
   * After a hot-path transition (a start, a settlement): the alarm must come no later than
   * the new lease's end and the time the events just added are due (src/domain/next-alarm.ts).
   * Usually the alarm is already early enough, and this awaits nothing. After failed
   * deliveries the alarm holds its backoff time, and the new events wait for it.
   */
  private async wake(row: BatchRow, leaseExpiresAt: number | null): Promise<void> {
    const queueAdded = this.toQueue.takeAdded();
    const accountAdded = this.toAccount.takeAdded();
    const delivering = row.outbox_failures === 0;
    // Only what this call changed: the armed alarm already covers the rest.
    const next = nextAlarm(
      {
        ...NOTHING_DUE,
        toQueue: delivering && queueAdded,
        toAccount: delivering && accountAdded,
        finished: row.finished_at !== null,
        leaseEndsAt: leaseExpiresAt,
      },
      Date.now(),
    );
    if (next) await this.clock.atLatest(next.at);
  }

  /**
   * One alarm serves the outboxes (soon, or later after failures), the earliest lease,
   * slots, lost dispatches and retention; src/domain/next-alarm.ts picks the time.
   */
  private async armAlarm(): Promise<void> {
    const row = this.row();
    if (!row) return;
    this.toQueue.takeAdded();
    this.toAccount.takeAdded();
    const now = Date.now();
    const lease = earliestLeaseEnd(this.sql);
    const oldest = row.queued > 0 ? oldestDispatchDue(this.sql) : null;
    const wantsSlots = wantedSlots(row) > row.slots_granted && !dispatchPaused(this.env);
    const next = nextAlarm(
      {
        toQueue: this.toQueue.hasPending(),
        toAccount: this.toAccount.hasPending(),
        deliveryRetryAt: row.outbox_failures > 0 ? now + backoffMs(row.outbox_failures) : null,
        finished: row.finished_at !== null,
        leaseEndsAt: lease ?? null,
        slotsRetryAt: wantsSlots ? (row.slots_retry_at ?? now) : null,
        lostDispatchAt: oldest !== null ? oldest + DISPATCH_TIMEOUT_MS : null,
        removalAt: removalDueAt(row, this.env),
        sweeping: row.cancelled_at !== null && hasStoredPending(this.sql),
      },
      now,
    );
    if (next === null) return this.clock.clear();
    await this.clock.atLatest(next.at);
  }

  private hasBatch(): boolean {
    if (!this.#hasBatch) {
      this.#hasBatch = tableExists(this.sql, "batch") && this.row() !== undefined;
      // A batch made by an older version gets the newer migrations (indexes) once per instance.
      if (this.#hasBatch) migrate(this.sql, BATCH_MIGRATIONS);
    }
    return this.#hasBatch;
  }

  private row(): BatchRow | undefined {
    return first<BatchRow>(this.sql, "SELECT * FROM batch WHERE id = 1");
  }

  /** The batch, if it exists, belongs to this account and is not being removed (otherwise indistinguishable). */
  private owned(accountId: string): BatchRow | undefined {
    if (!this.hasBatch()) return undefined;
    const row = this.reads.row(() => this.row());
    return row?.account_id === accountId && !isExpiring(row) ? row : undefined;
  }

  // ---- retention and operations (src/batch/retention.ts, /healthz, /admin/stats) -------------

  /** What retention needs from this object. */
  private retentionHost(): RetentionHost {
    return {
      storage: this.ctx.storage,
      env: this.env,
      toAccount: this.toAccount,
      row: () => this.row(),
      deliver: () => this.deliver(),
      alarm: this.clock,
      removed: () => {
        this.#hasBatch = false;
        this.reads.clear();
      },
    };
  }

  /** NOT_FOUND or BATCH_EXPIRED (the account keeps the tombstone of a removed batch). */
  private absent(accountId: string): Promise<Failure> {
    return absentBatch(this.retentionHost(), this.accountStub(accountId), this.ctx.id.name, accountId);
  }

  private item(row: BatchRow, itemId: string): ItemRow | undefined {
    return itemById(this.sql, row, itemId);
  }

  // ---- live views (src/batch/live.ts) -- region begin: hibernatable WebSockets ---------------
  // The Worker (src/http/routes/live.ts) forwards an authenticated upgrade with the account id;
  // notify() broadcasts every transition to the sockets accepted here.

  override async fetch(request: Request): Promise<Response> {
    const accountId = request.headers.get(LIVE_ACCOUNT_HEADER) ?? "";
    const keyId = request.headers.get(LIVE_KEY_HEADER) ?? "";
    const keyHash = request.headers.get(LIVE_KEY_HASH_HEADER);
    if (keyHash !== null && accountId && keyId) return this.openLiveAs({ accountId, keyId, keyHash }, request);
    const row = accountId ? this.owned(accountId) : undefined;
    const admit = (batchId: string) => this.accountStub(accountId).admitLiveView(keyId, batchId);
    return acceptLive(this.ctx, request, { accountId, keyId }, row ? batchView(row) : null, admit);
  }

  /**
   * A live view opened with a key claim: the key checked from this object's copy. The socket
   * is accepted, then the copy read again with no await between: a key's end that arrives
   * later finds the socket (dropKeyCopies closes it), one that came earlier left its marker.
   * Without a copy (the account lends no more), the account admits the view, as before.
   */
  private async openLiveAs(claim: KeyClaim, request: Request): Promise<Response> {
    const access = await this.admit(claim);
    if (typeof access !== "string") {
      const status = access.code === "KEY_UNCHECKED" ? 404 : 403;
      return Response.json({ code: access.code, message: "message" in access ? access.message : "" }, { status });
    }
    const row = this.owned(claim.accountId);
    const admit = async (batchId: string) => {
      const copy = checkCopy(this.sql, claim, Date.now());
      if (copy !== "unknown") return copy === "valid";
      return this.accountStub(claim.accountId).admitLiveView(claim.keyId, batchId);
    };
    const owner = { accountId: claim.accountId, keyId: claim.keyId };
    return acceptLive(this.ctx, request, owner, row ? batchView(row) : null, admit);
  }

  /** The account ended these keys (revoked, expired, account closed): their live views close now (no storage involved). */
  closeLiveViews(keyIds: string[], why: KeyEnd): number {
    return closeLiveOfKeys(this.ctx, keyIds, why);
  }

  override async webSocketMessage(ws: WebSocket, message: string | ArrayBuffer): Promise<void> {
    answerLive(ws, message);
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    closeLive(ws, code, reason);
  }
  // ---- live views: region end -------------------------------------------------------------------
}

/**
 * A completion with its result as stored JSON; one whose result is too large to keep is
 * settled as failed (and refunded) instead. (The executor keeps inline results far smaller.)
 */
function keepable(
  report: SettleReport,
): (SettleReport & { outcome: "failed" }) | (SettleReport & { outcome: "completed"; json: string }) {
  if (report.outcome === "failed") return report;
  const json = JSON.stringify(report.result ?? null);
  if (json.length <= LIMITS.maxInlineResultBytes) return { ...report, json };
  const error = {
    code: "RESULT_TOO_LARGE",
    message: `The result of ${json.length} bytes is larger than the ${LIMITS.maxInlineResultBytes} bytes kept inline.`,
  };
  return { itemId: report.itemId, attempt: report.attempt, outcome: "failed", error, meta: report.meta };
}

function snapshotOf(row: BatchRow): BatchIndexSnapshot {
  return {
    status: row.status,
    completed: row.completed,
    failed: row.failed,
    cancelled: row.cancelled,
    finishedAt: row.finished_at,
  };
}

/** One structured line per batch status change (ids and counts only: URLs may carry secrets). */
function logTransition(before: BatchRow, after: BatchRow): void {
  log("info", "batch transition", {
    batchId: after.batch_id,
    accountId: after.account_id,
    from: before.status,
    to: after.status,
    counts: { total: after.total, ...countsOf(after), queued: after.queued },
  });
}

/** Exponential backoff with jitter: about 1 s, 2 s, 4 s … capped at 5 minutes. */
function backoffMs(failures: number): number {
  const base = Math.min(1000 * 2 ** (failures - 1), 300_000);
  return Math.round(base * (0.5 + Math.random() / 2));
}
