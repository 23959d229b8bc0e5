/**
 * How long things are kept: the policy both the batch object (its removal, src/batch/retention.ts)
 * and the account (its tombstones and abandoned holds) follow. Pure numbers, no storage.
 */

export const DAY_MS = 24 * 60 * 60 * 1000;
export const DEFAULT_RETENTION_DAYS = 30;
/**
 * Expired batches stay in their account's index this long after removal (GET says
 * BATCH_EXPIRED rather than NOT_FOUND), then go: the index must not grow without bound.
 */
export const TOMBSTONE_MS = 365 * DAY_MS;
/**
 * A hold refused for a batch that was never created is remembered this long (so a late
 * create or confirm is still refused), then forgotten, here and in the account. Requests
 * last minutes; a week is far beyond any create that could still arrive.
 */
export const ABANDONED_HOLD_MS = 7 * DAY_MS;

/**
 * How long a finished batch is kept. At least one day: longer than an Idempotency-Key lives
 * (24 h from creation), so a replayed create can never meet a removed batch.
 */
export function retentionMs(env: { RETENTION_DAYS?: string }): number {
  const days = Number(env.RETENTION_DAYS);
  return (Number.isFinite(days) && days >= 1 ? days : DEFAULT_RETENTION_DAYS) * DAY_MS;
}
