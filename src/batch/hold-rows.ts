/**
 * The batch object's `holds` table: credit holds this batch applied, is asking the account
 * for (a retry), or gave up. States are the typed BatchHoldState of src/domain/holds.ts,
 * always bound as values, never spelled in SQL.
 */
import { BATCH_HOLD, type BatchHoldState } from "../domain/holds";
import { all, first } from "../durable/sql";

export function holdState(sql: SqlStorage, key: string): BatchHoldState | undefined {
  return first<{ state: BatchHoldState }>(sql, "SELECT state FROM holds WHERE key = ?", key)?.state;
}

export function insertHold(
  sql: SqlStorage,
  hold: { key: string; state: BatchHoldState; amount: number; createdAt: number; itemIdxs?: readonly number[] },
): void {
  sql.exec(
    "INSERT INTO holds (key, state, amount, item_idxs, created_at) VALUES (?, ?, ?, ?, ?)",
    hold.key,
    hold.state,
    hold.amount,
    hold.itemIdxs === undefined ? null : JSON.stringify(hold.itemIdxs),
    hold.createdAt,
  );
}

export function setHoldState(sql: SqlStorage, key: string, state: BatchHoldState): void {
  sql.exec("UPDATE holds SET state = ? WHERE key = ?", state, key);
}

/** Marks `key` abandoned, recording it if it was never seen (a tombstone that refuses it later). */
export function abandonHoldRow(sql: SqlStorage, key: string, now: number): void {
  sql.exec(
    "INSERT INTO holds (key, state, created_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET state = excluded.state",
    key,
    BATCH_HOLD.abandoned,
    now,
  );
}

/** Forgets a reservation the account refused (it never took the credits). */
export function dropReserving(sql: SqlStorage, key: string): void {
  sql.exec("DELETE FROM holds WHERE key = ? AND state = ?", key, BATCH_HOLD.reserving);
}

/** Whether a retry is asking the account for credits right now. */
export function isReserving(sql: SqlStorage): boolean {
  return first(sql, "SELECT 1 AS x FROM holds WHERE state = ? LIMIT 1", BATCH_HOLD.reserving) !== undefined;
}

/** Keys of reservations made at or before `before` and still not answered. */
export function reservingSince(sql: SqlStorage, before: number): string[] {
  return all<{ key: string }>(
    sql,
    "SELECT key FROM holds WHERE state = ? AND created_at <= ?",
    BATCH_HOLD.reserving,
    before,
  ).map((r) => r.key);
}

/** Retry holds made so far (each numbers the next key). */
export function retryHoldCount(sql: SqlStorage): number {
  return first<{ n: number }>(sql, "SELECT count(*) AS n FROM holds WHERE key LIKE '%:retry:%'")?.n ?? 0;
}
