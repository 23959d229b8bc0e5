/**
 * The account's batch index, table `batches`: one row per batch with its counts (kept
 * current by the batch object's versioned `status` events), the credits it still holds,
 * and whether listings show it (not before the batch object confirms its creation). When
 * retention removes a batch its row stays as a tombstone, status 'expired' and hidden, so
 * reads can answer BATCH_EXPIRED; tombstones go later (src/account/retention.ts).
 * Call the writes inside the account object's transaction.
 */
import type { BatchIndexSnapshot } from "../domain/account-events";
import type { BatchStatus } from "../domain/states";
import { all, first, tableExists } from "../durable/sql";

export interface BatchIndexRow {
  batchId: string;
  status: BatchStatus;
  total: number;
  completed: number;
  failed: number;
  cancelled: number;
  createdAt: number;
  finishedAt: number | null;
  /** json or markdown; null for a batch indexed before the index kept it. */
  output: string | null;
}

/** A new batch, hidden until its creation is confirmed, holding `reserved` credits. */
export function indexBatch(
  sql: SqlStorage,
  batchId: string,
  batch: { total: number; reserved: number; output: string },
  now: number,
): void {
  sql.exec(
    "INSERT INTO batches (batch_id, status, total, reserved, output, created_at) VALUES (?, 'pending', ?, ?, ?, ?)",
    batchId,
    batch.total,
    batch.reserved,
    batch.output,
    now,
  );
}

/** Batches pending or running, shown or not yet (a batch whose confirmation is in flight is active). */
export function countActive(sql: SqlStorage): number {
  return first<{ n: number }>(sql, "SELECT count(*) AS n FROM batches WHERE status IN ('pending', 'running')")!.n;
}

/** The same batches, oldest first. */
export function activeBatchIds(sql: SqlStorage): string[] {
  return all<{ batch_id: string }>(
    sql,
    "SELECT batch_id FROM batches WHERE status IN ('pending', 'running') ORDER BY created_at",
  ).map((r) => r.batch_id);
}

export function addReserved(sql: SqlStorage, batchId: string, amount: number): void {
  sql.exec("UPDATE batches SET reserved = reserved + ? WHERE batch_id = ?", amount, batchId);
}

/** The batch object confirmed the creation: listings show the batch. */
export function showBatch(sql: SqlStorage, batchId: string): void {
  sql.exec("UPDATE batches SET visible = 1 WHERE batch_id = ?", batchId);
}

/** The batch was never created (its hold is void): no row, not even a tombstone. */
export function unindexBatch(sql: SqlStorage, batchId: string): void {
  sql.exec("DELETE FROM batches WHERE batch_id = ?", batchId);
}

/** A newer snapshot replaces the row's counts; an older or repeated one changes nothing. */
export function updateIndex(sql: SqlStorage, batchId: string, version: number, s: BatchIndexSnapshot): boolean {
  // A removed batch's tombstone never comes back to life (status 'expired' is final).
  const cursor = sql.exec(
    `UPDATE batches SET status = ?, completed = ?, failed = ?, cancelled = ?, finished_at = ?, version = ?
     WHERE batch_id = ? AND version < ? AND status != 'expired' RETURNING 1 AS x`,
    s.status,
    s.completed,
    s.failed,
    s.cancelled,
    s.finishedAt,
    version,
    batchId,
    version,
  );
  return cursor.toArray().length > 0;
}

export function indexRow(sql: SqlStorage, batchId: string): { status: string; reserved: number } | undefined {
  return first<{ status: string; reserved: number }>(
    sql,
    "SELECT status, reserved FROM batches WHERE batch_id = ?",
    batchId,
  );
}

export function isTombstone(sql: SqlStorage, batchId: string): boolean {
  if (!tableExists(sql, "batches")) return false;
  return first(sql, "SELECT 1 AS x FROM batches WHERE batch_id = ? AND status = 'expired'", batchId) !== undefined;
}

/** Retention removed the batch: its row becomes a hidden tombstone. */
export function tombstoneBatch(sql: SqlStorage, batchId: string): void {
  sql.exec("UPDATE batches SET status = 'expired', visible = 0 WHERE batch_id = ?", batchId);
}

/** Tombstones of batches that finished (or were made) at or before `before`. */
export function purgeTombstones(sql: SqlStorage, before: number): void {
  sql.exec("DELETE FROM batches WHERE status = 'expired' AND coalesce(finished_at, created_at) <= ?", before);
}

/** One page of the listing, newest first. */
export function listVisible(sql: SqlStorage, page: number, limit: number): { jobs: BatchIndexRow[]; total: number } {
  const total = first<{ n: number }>(sql, "SELECT count(*) AS n FROM batches WHERE visible = 1")!.n;
  const jobs = all<BatchIndexRow>(
    sql,
    `SELECT batch_id AS batchId, status, total, completed, failed, cancelled, created_at AS createdAt, finished_at AS finishedAt,
            output
     FROM batches WHERE visible = 1 ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?`,
    limit,
    (page - 1) * limit,
  );
  return { jobs, total };
}

/** For /admin/stats: shown batches and tombstones, by status. */
export function countByStatus(sql: SqlStorage): Record<string, number> {
  const batches: Record<string, number> = {};
  const byStatus = all<{ status: string; n: number }>(
    sql,
    "SELECT status, count(*) AS n FROM batches WHERE visible = 1 OR status = 'expired' GROUP BY status",
  );
  for (const r of byStatus) batches[r.status] = r.n;
  return batches;
}

/** Shown batches not finished, oldest first, at most `limit`. */
export function unfinishedBatchIds(sql: SqlStorage, limit: number): string[] {
  return all<{ batch_id: string }>(
    sql,
    "SELECT batch_id FROM batches WHERE visible = 1 AND finished_at IS NULL ORDER BY created_at LIMIT ?",
    limit,
  ).map((r) => r.batch_id);
}
