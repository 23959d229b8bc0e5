/**
 * Which batch objects hold a copy of which API key's validity, so that a batch read costs
 * one object call (the batch's) and still never outlives its key (docs/scaling.md, "Polling
 * without the account object"). Table `key_copies`: one row per key and batch object the
 * account lent the key to (`lendCopy`, in the same step that checked the key); `drop_at`
 * null while the key is valid, else when the next push of its end is due.
 *
 * Ending a key (revoke, account close) marks its copies in the step that ends it and pushes
 * the end to each holder (`dropCopies`); a holder that confirms is forgotten here. The batch
 * keeps a marker of the end, so a lend answer still on its way cannot bring the copy back.
 * A key that expires needs no push for reads (each copy carries the expiry and the batch
 * checks it), but the alarm pushes it anyway, to close live views admitted through copies.
 *
 * Bounded: at most MAX_KEY_COPIES rows per account. Past that, a lend answers "valid, do not
 * keep a copy" and that batch asks the account on every read (as before copies existed),
 * so a revoke or a close never waits on more than MAX_KEY_COPIES pushes.
 */
import type { KeyEnd, LendAnswer } from "../domain/key-claim";
import { all, first } from "../durable/sql";
import type { Env } from "../env";
import { log } from "../lib/log";
import { mapBounded } from "../lib/map-bounded";

/** Copies one account lends at most (over all its keys). */
export const MAX_KEY_COPIES = 10_000;
/** A holder that did not confirm a drop is pushed again after this long (by the alarm). */
export const COPY_DROP_RETRY_MS = 10_000;
/** Batch objects pushed at once. */
const DROP_CONCURRENCY = 32;
/** Copies of expired keys one alarm run marks and pushes (the next run takes the rest at once). */
const EXPIRED_PER_ALARM = 1_000;

export type { LendAnswer };

export interface CopyToDrop {
  keyId: string;
  batchId: string;
  why: KeyEnd;
}

/**
 * The lending step (the caller checked, in this same step, that the key is valid now):
 * notes that `batchId` holds a copy of the key. False when the account's table is full:
 * the batch must not keep a copy (it will ask again next time).
 */
export function lendCopy(sql: SqlStorage, keyId: string, batchId: string, now: number): boolean {
  const known = first(sql, "SELECT 1 AS x FROM key_copies WHERE key_id = ? AND batch_id = ?", keyId, batchId);
  if (known === undefined) {
    const n = first<{ n: number }>(sql, "SELECT count(*) AS n FROM key_copies")!.n;
    if (n >= MAX_KEY_COPIES) return false;
  }
  sql.exec(
    "INSERT INTO key_copies (key_id, batch_id, lent_at) VALUES (?, ?, ?) ON CONFLICT (key_id, batch_id) DO UPDATE SET lent_at = excluded.lent_at",
    keyId,
    batchId,
    now,
  );
  return true;
}

/**
 * In the step that revokes `keyId` (null: every key, the account closing): its copies,
 * marked for dropping (next attempt at `retryAt`, should this one fail).
 */
export function endCopiesOfKeys(sql: SqlStorage, keyId: string | null, retryAt: number): CopyToDrop[] {
  const rows =
    keyId === null
      ? all<{ key_id: string; batch_id: string }>(
          sql,
          "UPDATE key_copies SET drop_at = ? RETURNING key_id, batch_id",
          retryAt,
        )
      : all<{ key_id: string; batch_id: string }>(
          sql,
          "UPDATE key_copies SET drop_at = ? WHERE key_id = ? RETURNING key_id, batch_id",
          retryAt,
          keyId,
        );
  return rows.map((r) => ({ keyId: r.key_id, batchId: r.batch_id, why: "revoked" }));
}

/**
 * For the alarm, in one step: copies of keys that expired by `now` not pushed yet (a bounded
 * number), and those whose retry is due; each marked for another attempt at `retryAt`.
 */
export function takeCopiesToDrop(sql: SqlStorage, now: number, retryAt: number): CopyToDrop[] {
  const why = "CASE WHEN k.revoked_at IS NULL THEN 'expired' ELSE 'revoked' END AS why";
  const rows = all<{ key_id: string; batch_id: string; why: KeyEnd }>(
    sql,
    `SELECT * FROM (SELECT c.key_id, c.batch_id, ${why} FROM api_keys k JOIN key_copies c ON c.key_id = k.key_id
       WHERE k.expires_at <= ? AND c.drop_at IS NULL LIMIT ?)
     UNION ALL
     SELECT c.key_id, c.batch_id, ${why} FROM key_copies c JOIN api_keys k ON k.key_id = c.key_id
     WHERE c.drop_at IS NOT NULL AND c.drop_at <= ?`,
    now,
    EXPIRED_PER_ALARM,
    now,
  );
  for (const r of rows)
    sql.exec("UPDATE key_copies SET drop_at = ? WHERE key_id = ? AND batch_id = ?", retryAt, r.key_id, r.batch_id);
  return rows.map((r) => ({ keyId: r.key_id, batchId: r.batch_id, why: r.why }));
}

/** Copies still to be dropped: of one key, or (null) of any key. */
export function copiesPending(sql: SqlStorage, keyId: string | null): number {
  return keyId === null
    ? first<{ n: number }>(sql, "SELECT count(*) AS n FROM key_copies WHERE drop_at IS NOT NULL")!.n
    : first<{ n: number }>(sql, "SELECT count(*) AS n FROM key_copies WHERE key_id = ? AND drop_at IS NOT NULL", keyId)!
        .n;
}

/** The batch is gone (retention): its copies with it. */
export function forgetCopiesOf(sql: SqlStorage, batchId: string): void {
  sql.exec("DELETE FROM key_copies WHERE batch_id = ?", batchId);
}

/** When the alarm must next push drops: a retry that is due, or the first expiry of a key with copies not pushed. */
export function nextCopyDropAt(sql: SqlStorage): number | null {
  const retry =
    first<{ t: number | null }>(sql, "SELECT min(drop_at) AS t FROM key_copies WHERE drop_at IS NOT NULL")?.t ?? null;
  const expiry =
    first<{ t: number | null }>(
      sql,
      `SELECT min(k.expires_at) AS t FROM api_keys k
       WHERE k.expires_at IS NOT NULL
         AND EXISTS (SELECT 1 FROM key_copies c WHERE c.key_id = k.key_id AND c.drop_at IS NULL)`,
    )?.t ?? null;
  if (retry === null) return expiry;
  return expiry === null ? retry : Math.min(retry, expiry);
}

/**
 * Pushes the end of these keys to the batch objects holding copies (marked already), a few
 * at a time, and forgets each copy its holder confirmed. A holder that fails is tried once
 * more here, then left to the alarm. Returns how many copies are still held (not confirmed).
 */
export async function dropCopies(
  sql: SqlStorage,
  batches: Env["BATCH"],
  copies: readonly CopyToDrop[],
): Promise<number> {
  let left = byBatch(copies);
  for (let attempt = 0; attempt < 2 && left.length > 0; attempt++) {
    const failed = await mapBounded(left, DROP_CONCURRENCY, async (group) => {
      try {
        await batches.getByName(group.batchId).dropKeyCopies(group.keyIds, group.why);
        for (const k of group.keyIds)
          sql.exec("DELETE FROM key_copies WHERE key_id = ? AND batch_id = ?", k, group.batchId);
        return null;
      } catch (err) {
        log("warn", "could not drop key copies", { batchId: group.batchId, error: String(err) });
        return group;
      }
    });
    left = failed.filter((g) => g !== null);
  }
  return left.reduce((n, g) => n + g.keyIds.length, 0);
}

/** Copies grouped by batch and reason: one call to each batch object per reason. */
function byBatch(copies: readonly CopyToDrop[]): { batchId: string; why: KeyEnd; keyIds: string[] }[] {
  const groups = new Map<string, { batchId: string; why: KeyEnd; keyIds: string[] }>();
  for (const c of copies) {
    const id = `${c.batchId}/${c.why}`;
    const group = groups.get(id) ?? { batchId: c.batchId, why: c.why, keyIds: [] };
    group.keyIds.push(c.keyId);
    groups.set(id, group);
  }
  return [...groups.values()];
}
