/**
 * Idempotency-Keys of batch creations, table `idempotency`: for 24 h a key names the batch
 * its first request made and the hash of that request's body, so a retry replays the batch
 * and another body under the same key is refused. A key goes with its batch (never created,
 * or removed by retention) or when it is 24 h old (the alarm).
 * Call the writes inside the account object's transaction.
 */
import { first, tableExists } from "../durable/sql";

export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

export interface KeyRecord {
  requestHash: string;
  batchId: string;
}

/** The creation this key made within the last 24 h; when there is none, an older record goes and the key is free for this request. */
export function earlierCreation(sql: SqlStorage, key: string, now: number): KeyRecord | undefined {
  const earlier = first<{ request_hash: string; batch_id: string; created_at: number }>(
    sql,
    "SELECT request_hash, batch_id, created_at FROM idempotency WHERE key = ?",
    key,
  );
  if (earlier && earlier.created_at > now - IDEMPOTENCY_TTL_MS)
    return { requestHash: earlier.request_hash, batchId: earlier.batch_id };
  sql.exec("DELETE FROM idempotency WHERE key = ?", key);
  return undefined;
}

/** Whether a creation under this key was accepted within the last 24 h (a retry would replay it). */
export function isKeyLive(sql: SqlStorage, key: string, now: number): boolean {
  if (!tableExists(sql, "idempotency")) return false;
  const row = first<{ created_at: number }>(sql, "SELECT created_at FROM idempotency WHERE key = ?", key);
  return row !== undefined && row.created_at > now - IDEMPOTENCY_TTL_MS;
}

export function recordKey(
  sql: SqlStorage,
  key: string,
  requestHash: string | null,
  batchId: string,
  now: number,
): void {
  sql.exec(
    "INSERT INTO idempotency (key, request_hash, batch_id, created_at) VALUES (?, ?, ?, ?)",
    key,
    requestHash,
    batchId,
    now,
  );
}

/** The batch is gone: a retry under its key makes a new batch. */
export function forgetKeysOf(sql: SqlStorage, batchId: string): void {
  sql.exec("DELETE FROM idempotency WHERE batch_id = ?", batchId);
}

/** Keys 24 h old or more. */
export function purgeExpiredKeys(sql: SqlStorage, now: number): void {
  sql.exec("DELETE FROM idempotency WHERE created_at <= ?", now - IDEMPOTENCY_TTL_MS);
}

/** When the oldest key expires (the alarm forgets it then), or null with none. */
export function nextKeyExpiry(sql: SqlStorage): number | null {
  const oldest = first<{ t: number | null }>(sql, "SELECT min(created_at) AS t FROM idempotency")?.t ?? null;
  return oldest === null ? null : oldest + IDEMPOTENCY_TTL_MS;
}
