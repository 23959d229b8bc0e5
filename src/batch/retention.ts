/**
 * Retention: a finished batch is kept RETENTION_DAYS, then the batch object's own alarm
 * removes it. The steps run in this order, and each is safe to repeat (alarms are
 * at-least-once, and the object may be evicted between any two):
 *
 *  1. In one transaction: mark the batch expiring and put a `forget` event in the outbox to
 *     the account. From then on reads answer BATCH_EXPIRED and a retry is refused, so
 *     nothing changes it.
 *  2. Deliver the outbox. The account turns the batch's index row into a tombstone and
 *     drops its holds and slots for it. Nothing is deleted before the account has that.
 *  3. Delete the batch's results in R2: every key under results/<batchId>/ (orphans of lost
 *     settlements included, which the item rows do not name).
 *  4. storage.deleteAll(): rows, outboxes, holds and the alarm. The ledger (in the account)
 *     is money history and is never deleted.
 *
 * The tombstone lives in the account's index, not here, so after step 4 this object stores
 * nothing at all; "expired" or "never existed" is the account's answer, which also keeps
 * ownership private (another account's expired batch still looks like NOT_FOUND).
 */
import type { AccountEvent } from "../domain/account-events";
import { batchNotFound, fail, type Failure } from "../domain/errors";
import { resultKey } from "../domain/executor-contract";
import { ABANDONED_HOLD_MS, retentionMs } from "../domain/retention-policy";
import type { AlarmClock } from "../durable/alarm-clock";
import { first, migrate, tableExists } from "../durable/sql";
import type { Env } from "../env";
import { log } from "../lib/log";
import { isReserving } from "./hold-rows";
import type { Outbox } from "./outbox";
import type { BatchRow } from "./rows";
import { BATCH_MIGRATIONS } from "./schema";

/** When removal must wait (a retry asking for credits, R2 failing), the alarm tries again after this. */
export const RETENTION_RETRY_MS = 60_000;
/** R2 deletes at most 1000 keys per call; at most this many listing pages per alarm run. */
const R2_PAGE = 1000;
const R2_PAGES_PER_RUN = 20;

/** The batch row with the v4 column (absent on objects not migrated since). */
type RetentionRow = BatchRow & { expiring_at?: number | null };

export function isExpiring(row: BatchRow): boolean {
  return ((row as RetentionRow).expiring_at ?? null) !== null;
}

/** When the batch is due for removal: finishedAt + retention; null while items remain. */
export function removalDueAt(row: BatchRow, env: Pick<Env, "RETENTION_DAYS">): number | null {
  return row.finished_at === null ? null : row.finished_at + retentionMs(env);
}

/** What the batch object lends retention: its storage, its outbox to the account and its delivery. */
export interface RetentionHost {
  storage: DurableObjectStorage;
  env: Env;
  toAccount: Outbox<AccountEvent>;
  row(): BatchRow | undefined;
  /** Sends both outboxes (and re-arms the alarm, with backoff after failures). */
  deliver(): Promise<void>;
  /** The object's alarm; every change goes through it. */
  alarm: AlarmClock;
  /** Storage was emptied: the object forgets what it remembered of it. */
  removed(): void;
}

/**
 * Runs from the alarm. Returns false when the batch is not due (the alarm does its usual
 * work), true when retention took this alarm: removal done, or waiting with the alarm set.
 */
export async function removeIfDue(host: RetentionHost, now = Date.now()): Promise<boolean> {
  const row = host.row();
  if (!row) return false;
  if (!isExpiring(row)) {
    const due = removalDueAt(row, host.env);
    if (due === null || due > now) return false;
    const sql = host.storage.sql;
    migrate(sql, BATCH_MIGRATIONS); // objects created before the expiring_at column
    const started = host.storage.transactionSync(() => {
      // A retry is asking the account for credits: let it finish (it may revive the batch).
      if (isReserving(sql)) return false;
      sql.exec("UPDATE batch SET expiring_at = ? WHERE id = 1", now);
      host.toAccount.add({ kind: "forget" });
      return true;
    });
    if (!started) {
      await host.alarm.set(now + RETENTION_RETRY_MS);
      return true;
    }
  }

  await host.deliver();
  if (host.toAccount.size() > 0) return true; // not acknowledged yet: deliver() armed the retry

  let deleted: number;
  try {
    const listed = await deleteResults(host.env.RESULTS, row.batch_id);
    if (listed.more) {
      await host.alarm.set(Date.now());
      return true;
    }
    deleted = listed.deleted;
  } catch (err) {
    log("warn", "retention: deleting results failed", { batchId: row.batch_id, error: String(err) });
    await host.alarm.set(Date.now() + RETENTION_RETRY_MS);
    return true;
  }

  await host.alarm.clear();
  await host.storage.deleteAll();
  host.removed();
  log("info", "batch removed", {
    batchId: row.batch_id,
    accountId: row.account_id,
    items: row.total,
    resultsDeleted: deleted,
  });
  return true;
}

/** Deletes up to R2_PAGES_PER_RUN pages of results/<batchId>/; `more` when some remain. */
export async function deleteResults(bucket: R2Bucket, batchId: string): Promise<{ deleted: number; more: boolean }> {
  const prefix = resultKey(batchId, "");
  let deleted = 0;
  for (let page = 0; page < R2_PAGES_PER_RUN; page++) {
    // Always list from the start: what was listed before is gone now.
    const listed = await bucket.list({ prefix, limit: R2_PAGE });
    if (listed.objects.length === 0) return { deleted, more: false };
    await bucket.delete(listed.objects.map((o) => o.key));
    deleted += listed.objects.length;
    if (!listed.truncated) return { deleted, more: false };
  }
  return { deleted, more: true };
}

/**
 * Why `accountId` cannot see this batch: removed (the account keeps the tombstone), being
 * removed, or never theirs. `batchId` is the object's name.
 */
export async function absentBatch(
  host: Pick<RetentionHost, "storage" | "row">,
  account: ReturnType<Env["ACCOUNT"]["getByName"]>,
  batchId: string | undefined,
  accountId: string,
): Promise<Failure> {
  const row = tableExists(host.storage.sql, "batch") ? host.row() : undefined;
  if (row) return row.account_id === accountId && isExpiring(row) ? expired() : batchNotFound();
  if (batchId === undefined) return batchNotFound();
  try {
    return (await account.isBatchExpired(batchId)) ? expired() : batchNotFound();
  } catch (err) {
    log("warn", "retention: could not ask the account about a missing batch", { batchId, error: String(err) });
    return fail("UNAVAILABLE", "Could not look this batch up; try again.");
  }
}

/**
 * An object that never got its batch keeps only a refused hold (resolveHold), so a late
 * create is refused. Its alarm forgets it after ABANDONED_HOLD_MS.
 */
export async function clearAbandonedHolds(
  storage: DurableObjectStorage,
  alarm: AlarmClock,
  now = Date.now(),
): Promise<void> {
  if (!tableExists(storage.sql, "holds")) return;
  const newest = first<{ t: number | null }>(storage.sql, "SELECT max(created_at) AS t FROM holds")?.t ?? null;
  if (newest !== null && newest + ABANDONED_HOLD_MS > now) {
    await alarm.set(newest + ABANDONED_HOLD_MS);
    return;
  }
  await alarm.clear();
  await storage.deleteAll();
  alarm.forget();
}

function expired(): Failure {
  return fail("BATCH_EXPIRED", "This batch finished more than the retention period ago and has been removed.");
}
