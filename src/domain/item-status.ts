/**
 * What an item's status reads as, given the status its row stores and its batch's cancel.
 *
 * A cancel writes only the batch row (src/batch/batch-object.ts): every item pending at
 * that instant is cancelled from then on, and the batch's alarm rewrites the rows later,
 * a chunk at a time (the sweep, src/batch/item-rows.ts). Until its row is rewritten, an
 * item stored `pending` in a cancelled batch reads `cancelled`, finished at the cancel.
 *
 * This is exact because nothing becomes pending in a cancelled batch: a failed attempt is
 * not requeued, an expired lease fails, a retry is refused (src/domain/batch-machine.ts).
 * So a row stored `pending` under a cancel was pending at the cancel, and the rewrite the
 * sweep will make (status `cancelled`, finished_at = the cancel's time) is known already.
 */
import type { ItemStatus } from "./states";

export interface StoredItemStatus {
  status: ItemStatus;
  finishedAt: number | null;
}

/** The item as every read must show it; `cancelledAt`: the batch's cancel time, null if not cancelled. */
export function itemStatusNow(stored: StoredItemStatus, cancelledAt: number | null): StoredItemStatus {
  if (cancelledAt !== null && stored.status === "pending") return { status: "cancelled", finishedAt: cancelledAt };
  return stored;
}

/** Whether the sweep still has to rewrite this row: it reads differently from how it is stored. */
export function awaitsSweep(stored: StoredItemStatus, cancelledAt: number | null): boolean {
  return itemStatusNow(stored, cancelledAt) !== stored;
}
