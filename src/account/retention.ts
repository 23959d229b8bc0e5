/**
 * The account's part of retention (the policy and the batch object's part are in
 * src/batch/retention.ts). Two steps, over the tables their modules own:
 * - `forgetBatch`, when a batch object is about to delete itself: its index row stays as a
 *   tombstone (status 'expired', hidden from listings, so reads answer BATCH_EXPIRED); its
 *   holds, slots, Idempotency-Keys, live views and key copies go. The ledger keeps every row, always.
 * - `purgeRetained`, from the alarm (which runs after every batch creation, so it keeps pace
 *   with growth): Idempotency-Keys older than 24 h, tombstones and void holds of batches
 *   never created once they are old enough (the cut-offs come from the retention policy).
 * Call them inside the account object's transaction or alarm.
 */
import { indexRow, purgeTombstones, tombstoneBatch } from "./batch-index";
import { deleteHoldsOf, hasPendingHold, purgeAbandonedHolds } from "./holds";
import { forgetKeysOf, purgeExpiredKeys } from "./idempotency";
import { forgetCopiesOf } from "./key-copies";
import { forgetViewsOf } from "./live-views";
import { dropSlots, slotsGrantedTo, waitingBatches } from "./slots";

/**
 * Forgets the batch; false when it was forgotten already (or its tombstone is long gone).
 * Throws (so the batch keeps the event and retries) while the books say the batch still
 * holds credits. `slotsFreed`: it held slots and some other batch waits for them.
 */
export function forgetBatch(sql: SqlStorage, batchId: string): { forgotten: boolean; slotsFreed: boolean } {
  const row = indexRow(sql, batchId);
  if (!row || row.status === "expired") return { forgotten: false, slotsFreed: false };
  if (row.reserved !== 0) throw new Error(`forget of batch ${batchId}, which still holds ${row.reserved} credits`);
  if (hasPendingHold(sql, batchId)) throw new Error(`forget of batch ${batchId}, which has a pending hold`);
  const slots = slotsGrantedTo(sql, batchId);
  tombstoneBatch(sql, batchId);
  deleteHoldsOf(sql, batchId);
  dropSlots(sql, batchId);
  forgetKeysOf(sql, batchId);
  forgetViewsOf(sql, batchId);
  forgetCopiesOf(sql, batchId);
  return { forgotten: true, slotsFreed: slots > 0 && waitingBatches(sql, 1).length > 0 };
}

/** What has outlived its use: old Idempotency-Keys, then tombstones and void holds made before their cut-offs. */
export function purgeRetained(
  sql: SqlStorage,
  now: number,
  cutoffs: { tombstonesBefore: number; abandonedHoldsBefore: number },
): void {
  purgeExpiredKeys(sql, now);
  purgeTombstones(sql, cutoffs.tombstonesBefore);
  purgeAbandonedHolds(sql, cutoffs.abandonedHoldsBefore);
}
