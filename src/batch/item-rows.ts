/**
 * Every statement on the batch object's `items` table: the writes of each item transition
 * (started, finished, requeued, dispatched, ...) and the reads the object decides from.
 * New items are written by insert-items.ts. The batch object calls these inside its own
 * transactions; nothing here awaits or opens a transaction.
 *
 * Pending items are found through the partial indexes of batch migration v2 (undispatched,
 * dispatched), running ones through items_lease, failed ones through items_failed: no
 * statement here walks the whole table.
 *
 * A cancel does not touch item rows (it would be linear in the pending items): rows stored
 * `pending` in a cancelled batch READ `cancelled` (src/domain/item-status.ts), and the
 * batch's alarm rewrites them a chunk at a time (`sweepCancelled`). Every read of whole
 * item rows goes through `readItems`, the one place that applies that rule, so no read of a
 * page, an item, a result or a live update can show a row the sweep has not reached yet as
 * pending. A new read of items belongs here and goes through it too.
 */
import type { SettleOutcome } from "../domain/batch-machine";
import type { ResultMeta } from "../domain/executor-contract";
import { itemStatusNow } from "../domain/item-status";
import type { ItemStatus } from "../domain/states";
import { all, type Bind, first } from "../durable/sql";
import type { BatchRow, ItemRow } from "./rows";

export { insertItems } from "./insert-items";

/**
 * Rows one sweep step rewrites. A rewrite costs about 3 us a row here (bench/cancel: a bare
 * UPDATE of 100k rows takes ~300 ms), so a chunk holds the object ~5-10 ms: a start, a read
 * or a second cancel that arrives meanwhile waits no longer than that, while a 1M-item
 * cancel still settles in storage within a few hundred alarm runs (docs/scaling.md).
 */
export const SWEEP_CHUNK_ROWS = 2_000;

/** What of the batch decides how its items read: its cancel. */
export type ItemReadContext = Pick<BatchRow, "cancelled_at">;

// ---- reads -----------------------------------------------------------------------------------

/** Whole item rows, each as it reads now (the one place that applies src/domain/item-status.ts). */
function readItems(sql: SqlStorage, batch: ItemReadContext, query: string, ...binds: Bind[]): ItemRow[] {
  return all<ItemRow>(sql, query, ...binds).map((row) => asOfNow(row, batch.cancelled_at));
}

function asOfNow(row: ItemRow, cancelledAt: number | null): ItemRow {
  const now = itemStatusNow({ status: row.status, finishedAt: row.finished_at }, cancelledAt);
  return now.status === row.status ? row : { ...row, status: now.status, finished_at: now.finishedAt };
}

export function itemById(sql: SqlStorage, batch: ItemReadContext, itemId: string): ItemRow | undefined {
  return readItems(sql, batch, "SELECT * FROM items WHERE id = ?", itemId)[0];
}

/** Items after `cursor` in order, one more than `limit` (so the caller knows whether a page follows). */
export function itemsAfter(sql: SqlStorage, batch: ItemReadContext, cursor: number, limit: number): ItemRow[] {
  return readItems(sql, batch, "SELECT * FROM items WHERE idx > ? ORDER BY idx LIMIT ?", cursor, limit + 1);
}

/**
 * Every column of an item row but `result` (a batch's whole item list reads results one by
 * one). A migration that adds an item column adds it here too: test/core/item-rows.test.ts
 * compares this list with the table.
 */
export const ITEM_COLUMNS_BUT_RESULT = [
  "idx",
  "id",
  "url",
  "status",
  "round",
  "attempts",
  "lease_attempt",
  "lease_expires_at",
  "error",
  "credits_used",
  "started_at",
  "finished_at",
  "dispatch_token",
  "dispatched_at",
  "not_before",
  "result_key",
  "status_code",
  "final_url",
  "duration_ms",
  "custom_id",
  "metadata",
] as const;
const COLUMNS_BUT_RESULT = ITEM_COLUMNS_BUT_RESULT.join(", ");

/** Every item in order, as it reads now, with `result` left null and its stored size beside it. */
export function allItemsButResults(
  sql: SqlStorage,
  batch: ItemReadContext,
): (ItemRow & { result_bytes: number | null })[] {
  return all<ItemRow & { result_bytes: number | null }>(
    sql,
    `SELECT ${COLUMNS_BUT_RESULT}, NULL AS result, length(CAST(result AS BLOB)) AS result_bytes FROM items ORDER BY idx`,
  ).map((row) => ({ ...asOfNow(row, batch.cancelled_at), result_bytes: row.result_bytes }));
}

/**
 * Items in `statuses` after `cursor`, in order, one more than `limit`. A row stored pending
 * in a cancelled batch reads cancelled, so asking for cancelled items asks the rows too.
 */
export function itemsInStatesAfter(
  sql: SqlStorage,
  batch: ItemReadContext,
  statuses: readonly ItemStatus[],
  cursor: number,
  limit: number,
): ItemRow[] {
  const stored = batch.cancelled_at !== null && statuses.includes("cancelled") ? [...statuses, "pending"] : statuses;
  return readItems(
    sql,
    batch,
    "SELECT * FROM items WHERE idx > ? AND status IN (SELECT value FROM json_each(?)) ORDER BY idx LIMIT ?",
    cursor,
    JSON.stringify(stored),
    limit + 1,
  ).filter((row) => statuses.includes(row.status));
}

/** One item's inline result. */
export function itemResult(sql: SqlStorage, idx: number): string | null {
  return first<{ result: string | null }>(sql, "SELECT result FROM items WHERE idx = ?", idx)?.result ?? null;
}

/**
 * Whether the sweep has rows left: rows stored `pending` (in a cancelled batch, those it
 * has not rewritten yet). Two probes of the pending partial indexes, one row each at most.
 */
export function hasStoredPending(sql: SqlStorage): boolean {
  return (
    first(sql, "SELECT 1 AS x FROM items WHERE status = 'pending' AND dispatched_at IS NULL LIMIT 1") !== undefined ||
    first(sql, "SELECT 1 AS x FROM items WHERE status = 'pending' AND dispatched_at IS NOT NULL LIMIT 1") !== undefined
  );
}

export function failedIdxs(sql: SqlStorage): number[] {
  return all<{ idx: number }>(sql, "SELECT idx FROM items WHERE status = 'failed' ORDER BY idx").map((r) => r.idx);
}

/** Running items whose lease ended by `now`, earliest first. */
export function expiredLeases(sql: SqlStorage, batch: ItemReadContext, now: number, limit: number): ItemRow[] {
  return readItems(
    sql,
    batch,
    "SELECT * FROM items WHERE status = 'running' AND lease_expires_at <= ? ORDER BY lease_expires_at LIMIT ?",
    now,
    limit,
  );
}

/** The earliest lease end of a running item (the partial index holds only running items: one row read). */
export function earliestLeaseEnd(sql: SqlStorage): number | null {
  return (
    first<{ t: number | null }>(
      sql,
      "SELECT min(lease_expires_at) AS t FROM items INDEXED BY items_lease WHERE status = 'running'",
    )?.t ?? null
  );
}

export interface Undispatched {
  idx: number;
  id: string;
  dispatch_token: number;
  not_before: number | null;
}

/** The first `n` pending items with no queue message out, in order. */
export function nextUndispatched(sql: SqlStorage, n: number): Undispatched[] {
  return all<Undispatched>(
    sql,
    "SELECT idx, id, dispatch_token, not_before FROM items WHERE status = 'pending' AND dispatched_at IS NULL ORDER BY idx LIMIT ?",
    n,
  );
}

/** When the oldest queue message still out was due (a delayed one counts from its delay's end). */
export function oldestDispatchDue(sql: SqlStorage): number | null {
  return (
    first<{ t: number | null }>(
      sql,
      "SELECT min(max(dispatched_at, coalesce(not_before, 0))) AS t FROM items WHERE status = 'pending' AND dispatched_at IS NOT NULL",
    )?.t ?? null
  );
}

/** Pending items whose queue message went out (and was due) at or before `before`. */
export function dispatchedBefore(sql: SqlStorage, before: number): number[] {
  return all<{ idx: number }>(
    sql,
    `SELECT idx FROM items WHERE status = 'pending' AND dispatched_at IS NOT NULL
       AND max(dispatched_at, coalesce(not_before, 0)) <= ?`,
    before,
  ).map((r) => r.idx);
}

// ---- writes: one per item transition ---------------------------------------------------------

/** pending -> running under a new lease (`attempt` is its fencing token). */
export function markRunning(sql: SqlStorage, idx: number, attempt: number, leaseExpiresAt: number, now: number): void {
  sql.exec(
    `UPDATE items SET status = 'running', attempts = ?, lease_attempt = ?, lease_expires_at = ?, started_at = ?,
       dispatched_at = NULL, not_before = NULL WHERE idx = ?`,
    attempt,
    attempt,
    leaseExpiresAt,
    now,
    idx,
  );
}

/** running -> completed or failed, with what the executor reported and the credits charged. */
export function markFinished(
  sql: SqlStorage,
  idx: number,
  outcome: SettleOutcome,
  payload: { result: string | null; error: string | null; meta: ResultMeta },
  creditsUsed: number,
  now: number,
): void {
  const m = payload.meta;
  sql.exec(
    `UPDATE items SET status = ?, result = ?, error = ?, credits_used = ?, finished_at = ?, lease_expires_at = NULL,
       result_key = ?, status_code = ?, final_url = ?, duration_ms = ? WHERE idx = ?`,
    outcome,
    payload.result,
    payload.error,
    creditsUsed,
    now,
    m.resultKey ?? null,
    m.statusCode ?? null,
    m.finalUrl ?? null,
    m.durationMs ?? null,
    idx,
  );
}

/** running -> pending again (a transient failure or a lost lease), not to run before `notBefore`. */
export function markRequeued(sql: SqlStorage, idx: number, error: string | null, notBefore: number | null): void {
  sql.exec(
    `UPDATE items SET status = 'pending', lease_attempt = NULL, lease_expires_at = NULL, error = ?, dispatched_at = NULL,
       not_before = ? WHERE idx = ?`,
    error,
    notBefore,
    idx,
  );
}

/** A queue message for the item went out, carrying `token` (older messages are stale). */
export function markDispatched(sql: SqlStorage, idx: number, token: number, now: number): void {
  sql.exec("UPDATE items SET dispatch_token = ?, dispatched_at = ? WHERE idx = ?", token, now, idx);
}

/** These items' queue messages are lost: they wait for a new dispatch. */
export function markUndispatched(sql: SqlStorage, idxs: readonly number[]): void {
  sql.exec("UPDATE items SET dispatched_at = NULL WHERE idx IN (SELECT value FROM json_each(?))", JSON.stringify(idxs));
}

/** failed -> pending for a new round (a retry), everything of the last round cleared. Returns rows changed. */
export function markRetried(sql: SqlStorage, idxs: readonly number[]): void {
  sql.exec(
    `UPDATE items SET status = 'pending', round = round + 1, attempts = 0, lease_attempt = NULL, lease_expires_at = NULL,
       error = NULL, result = NULL, credits_used = 0, started_at = NULL, finished_at = NULL, dispatched_at = NULL,
       not_before = NULL, result_key = NULL, status_code = NULL, final_url = NULL, duration_ms = NULL
     WHERE idx IN (SELECT value FROM json_each(?)) AND status = 'failed'`,
    JSON.stringify(idxs),
  );
}

/**
 * One step of a cancel's sweep: up to `limit` rows still stored `pending` get what a linear
 * cancel would have written (status `cancelled`, finished_at = the cancel's time). Each
 * UPDATE walks one of the two pending partial indexes. Safe to repeat: a rewritten row is no
 * longer pending. Returns the rows rewritten (fewer than `limit`: the sweep is done).
 */
export function sweepCancelled(sql: SqlStorage, cancelledAt: number, limit: number): number {
  let done = 0;
  for (const where of ["dispatched_at IS NULL ORDER BY idx", "dispatched_at IS NOT NULL"]) {
    if (done >= limit) break;
    sql
      .exec(
        `UPDATE items SET status = 'cancelled', finished_at = ?
         WHERE idx IN (SELECT idx FROM items WHERE status = 'pending' AND ${where} LIMIT ?)`,
        cancelledAt,
        limit - done,
      )
      .toArray();
    done += first<{ n: number }>(sql, "SELECT changes() AS n")?.n ?? 0;
  }
  return done;
}
