/**
 * Where each API key has live views open (WebSockets held by batch objects), so that the
 * end of the key (revoked, expired, or its account closed) closes them: the account asks
 * those batch objects to (`closeViews`) and forgets a view once its batch has. Table
 * `live_views` (migrations v6, v7): one row per key and batch; `close_at` null while the key
 * is valid, else when the next attempt to close the views is due (a batch that did not answer).
 *
 * Why no socket outlives its key (docs/live-views.md): the batch object accepts the socket
 * BEFORE it asks the account, and the account checks the key and notes the view in one
 * synchronous step (`admitLiveView`); ending a key marks its views in the step that ends
 * it. So either the note comes first, and the close finds the (already accepted) socket,
 * or the end comes first, and the check refuses the socket.
 */
import { all, first } from "../durable/sql";
import type { Env } from "../env";
import { mapBounded } from "../lib/map-bounded";
import { log } from "../lib/log";

/** A batch that did not close its views is asked again after this long (by the alarm). */
export const LIVE_CLOSE_RETRY_MS = 10_000;
/** Batch objects asked at once to close views. */
const CLOSE_CONCURRENCY = 16;

/** As the batch object's closeLiveViews takes it (the account does not import src/batch/). */
export type KeyEnd = "revoked" | "expired";
export interface ViewToClose {
  keyId: string;
  batchId: string;
  why: KeyEnd;
}

/** The admission step: `keyId` is valid now (the caller checked, in this same step): note its view of `batchId`. */
export function noteLiveView(sql: SqlStorage, keyId: string, batchId: string, now: number): void {
  sql.exec(
    "INSERT INTO live_views (key_id, batch_id, opened_at) VALUES (?, ?, ?) ON CONFLICT (key_id, batch_id) DO UPDATE SET opened_at = excluded.opened_at",
    keyId,
    batchId,
    now,
  );
}

/**
 * In the step that revokes `keyId` (null: every key, the account closing): its views, marked
 * for closing (next attempt at `retryAt`, should this one fail).
 */
export function endViewsOfKeys(sql: SqlStorage, keyId: string | null, retryAt: number): ViewToClose[] {
  const rows =
    keyId === null
      ? all<{ key_id: string; batch_id: string }>(
          sql,
          "UPDATE live_views SET close_at = ? RETURNING key_id, batch_id",
          retryAt,
        )
      : all<{ key_id: string; batch_id: string }>(
          sql,
          "UPDATE live_views SET close_at = ? WHERE key_id = ? RETURNING key_id, batch_id",
          retryAt,
          keyId,
        );
  return rows.map((r) => ({ keyId: r.key_id, batchId: r.batch_id, why: "revoked" }));
}

/**
 * For the alarm, in one step: the views not closed yet of keys that were revoked or expired
 * by `now`, and those whose retry is due; each marked for another attempt at `retryAt`.
 * Both parts read through indexes: the account's few ended keys, and the partial index of
 * views being closed.
 */
export function takeViewsToClose(sql: SqlStorage, now: number, retryAt: number): ViewToClose[] {
  const why = "CASE WHEN k.revoked_at IS NULL THEN 'expired' ELSE 'revoked' END AS why";
  const rows = all<{ key_id: string; batch_id: string; why: KeyEnd }>(
    sql,
    `SELECT v.key_id, v.batch_id, ${why} FROM api_keys k JOIN live_views v ON v.key_id = k.key_id
     WHERE (k.revoked_at IS NOT NULL OR k.expires_at <= ?) AND v.close_at IS NULL
     UNION ALL
     SELECT v.key_id, v.batch_id, ${why} FROM live_views v JOIN api_keys k ON k.key_id = v.key_id
     WHERE v.close_at IS NOT NULL AND v.close_at <= ?`,
    now,
    now,
  );
  for (const r of rows)
    sql.exec("UPDATE live_views SET close_at = ? WHERE key_id = ? AND batch_id = ?", retryAt, r.key_id, r.batch_id);
  return rows.map((r) => ({ keyId: r.key_id, batchId: r.batch_id, why: r.why }));
}

/** The batch closed these views: forget them. */
export function viewsClosed(sql: SqlStorage, batchId: string, keyIds: readonly string[]): void {
  for (const k of keyIds) sql.exec("DELETE FROM live_views WHERE key_id = ? AND batch_id = ?", k, batchId);
}

/** The batch is gone (retention): its views with it. */
export function forgetViewsOf(sql: SqlStorage, batchId: string): void {
  sql.exec("DELETE FROM live_views WHERE batch_id = ?", batchId);
}

/** When the alarm must next close views: a retry that is due, or the first expiry of a key with views open. */
export function nextLiveViewCloseAt(sql: SqlStorage): number | null {
  const retry =
    first<{ t: number | null }>(sql, "SELECT min(close_at) AS t FROM live_views WHERE close_at IS NOT NULL")?.t ?? null;
  const expiry =
    first<{ t: number | null }>(
      sql,
      `SELECT min(k.expires_at) AS t FROM api_keys k
     WHERE k.expires_at IS NOT NULL AND k.revoked_at IS NULL
       AND EXISTS (SELECT 1 FROM live_views v WHERE v.key_id = k.key_id AND v.close_at IS NULL)`,
    )?.t ?? null;
  if (retry === null) return expiry;
  return expiry === null ? retry : Math.min(retry, expiry);
}

/**
 * Asks batch objects to close these views (marked for closing already), a few batches at
 * a time; forgets those closed. A batch that does not answer keeps its row, and the alarm
 * asks it again. Returns the sockets closed.
 */
export async function closeViews(
  sql: SqlStorage,
  batches: Env["BATCH"],
  views: readonly ViewToClose[],
): Promise<number> {
  const closed = await mapBounded(byBatch(views), CLOSE_CONCURRENCY, async ({ batchId, why, keyIds }) => {
    try {
      const n = await batches.getByName(batchId).closeLiveViews(keyIds, why);
      viewsClosed(sql, batchId, keyIds);
      return n;
    } catch (err) {
      log("warn", "could not close live views", { batchId, error: String(err) });
      return 0;
    }
  });
  return closed.reduce((n, c) => n + c, 0);
}

/** Views grouped by batch and reason: one call to each batch object per reason. */
function byBatch(views: readonly ViewToClose[]): { batchId: string; why: KeyEnd; keyIds: string[] }[] {
  const groups = new Map<string, { batchId: string; why: KeyEnd; keyIds: string[] }>();
  for (const v of views) {
    const id = `${v.batchId}/${v.why}`;
    const group = groups.get(id) ?? { batchId: v.batchId, why: v.why, keyIds: [] };
    group.keyIds.push(v.keyId);
    groups.set(id, group);
  }
  return [...groups.values()];
}
