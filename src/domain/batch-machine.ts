/**
 * The batch state machine as plain functions: no storage, no await. The batch object
 * reads a row, asks one of these what to do, and writes the answer in the same
 * synchronous step, so no other event can slip in between decision and write.
 */
import { isChargedFailure } from "./charging";
import type { ErrorCode } from "./errors";
import { LIMITS } from "./limits";
import type { BatchStatus, ItemCounts, ItemStatus } from "./states";

export interface BatchState {
  status: BatchStatus;
  counts: ItemCounts;
  creditsPerItem: number;
}

export interface ItemState {
  status: ItemStatus;
  /** Attempts granted so far; the running attempt's number is the lease's fencing token. */
  attempts: number;
  leaseAttempt: number | null;
  /** Bumped at each dispatch; a queue message carrying an older one is stale. */
  dispatchToken?: number;
}

export type DropReason = "BATCH_CANCELLED" | "ITEM_NOT_PENDING" | "ITEM_NOT_FOUND" | "STALE_DISPATCH";

export type StartDecision = { kind: "start"; attempt: number } | { kind: "drop"; reason: DropReason };

/**
 * An item may start only while its batch is not cancelled and the item is pending, and,
 * when the caller names the dispatch it came from, only for the item's latest dispatch.
 */
export function decideStart(batch: BatchState, item: ItemState | undefined, dispatchToken?: number): StartDecision {
  if (!item) return { kind: "drop", reason: "ITEM_NOT_FOUND" };
  if (batch.status === "cancelled") return { kind: "drop", reason: "BATCH_CANCELLED" };
  if (item.status !== "pending") return { kind: "drop", reason: "ITEM_NOT_PENDING" };
  if (dispatchToken !== undefined && dispatchToken !== item.dispatchToken)
    return { kind: "drop", reason: "STALE_DISPATCH" };
  return { kind: "start", attempt: item.attempts + 1 };
}

export type SettleOutcome = "completed" | "failed";

export type SettleDecision =
  | { kind: "settle" }
  | { kind: "duplicate" }
  | { kind: "ignore"; reason: "STALE_ATTEMPT" | "ITEM_NOT_RUNNING" | "ITEM_NOT_FOUND" };

/**
 * Only the attempt that holds the lease may settle an item. A repeat of the settlement
 * that already happened is a harmless duplicate (queue redelivery); anything else is ignored.
 */
export function decideSettle(item: ItemState | undefined, attempt: number, outcome: SettleOutcome): SettleDecision {
  if (!item) return { kind: "ignore", reason: "ITEM_NOT_FOUND" };
  if (item.leaseAttempt !== attempt) {
    return { kind: "ignore", reason: item.status === "running" ? "STALE_ATTEMPT" : "ITEM_NOT_RUNNING" };
  }
  if (item.status === "running") return { kind: "settle" };
  if (item.status === outcome) return { kind: "duplicate" };
  return { kind: "ignore", reason: "ITEM_NOT_RUNNING" };
}

/**
 * A failed attempt goes back to pending (no credit moves) when the executor says it may
 * pass next time, attempts are left, the batch is not cancelled, and it is not a charged
 * failure (src/domain/charging.ts). Otherwise the item fails for good.
 */
export function decideRequeue(
  item: ItemState,
  failure: { code: string; retryable?: boolean },
  batch: BatchStatus,
): boolean {
  return (
    failure.retryable === true &&
    !isChargedFailure(failure.code) &&
    item.attempts < LIMITS.maxAttempts &&
    batch !== "cancelled"
  );
}

export function moveItems(counts: ItemCounts, from: ItemStatus, to: ItemStatus, n = 1): ItemCounts {
  if (counts[from] < n) throw new Error(`cannot move ${n} items from ${from}: only ${counts[from]}`);
  return { ...counts, [from]: counts[from] - n, [to]: counts[to] + n };
}

export function isFinished(counts: ItemCounts): boolean {
  return counts.pending + counts.running === 0;
}

/**
 * The batch status that follows from its item counts (a cancelled batch stays cancelled).
 * `everStarted`: some item of the batch has started at some point; a retried batch whose
 * items are all pending again is still running, not pending.
 */
export function batchStatusFor(current: BatchStatus, counts: ItemCounts, everStarted: boolean): BatchStatus {
  if (current === "cancelled") return "cancelled";
  if (!isFinished(counts)) return everStarted ? "running" : "pending";
  if (counts.completed === 0 && counts.failed > 0) return "failed";
  return "completed";
}

export type Rejection = { kind: "reject"; code: ErrorCode; message: string };

export type CancelDecision = { kind: "cancel"; cancelledItems: number; creditsRefunded: number } | Rejection;

/** Cancel stops pending items only; running ones finish and are charged. */
export function decideCancel(batch: BatchState): CancelDecision {
  if (batch.status !== "pending" && batch.status !== "running") {
    return {
      kind: "reject",
      code: "ALREADY_TERMINAL",
      message: `Cannot cancel a batch that is already ${batch.status}.`,
    };
  }
  const cancelledItems = batch.counts.pending;
  return { kind: "cancel", cancelledItems, creditsRefunded: cancelledItems * batch.creditsPerItem };
}

export type RetryDecision = { kind: "retry"; count: number; credits: number } | Rejection;

/** Retry puts failed items back to pending, with fresh credits reserved for them. */
export function decideRetry(batch: BatchState, retryInProgress: boolean): RetryDecision {
  if (batch.status === "cancelled") {
    return { kind: "reject", code: "BATCH_CANCELLED", message: "Cannot retry items of a cancelled batch." };
  }
  if (retryInProgress) {
    return { kind: "reject", code: "RETRY_IN_PROGRESS", message: "A retry of this batch is already in progress." };
  }
  if (batch.counts.failed === 0) {
    return { kind: "reject", code: "NO_FAILED_ITEMS", message: "This batch has no failed items to retry." };
  }
  return { kind: "retry", count: batch.counts.failed, credits: batch.counts.failed * batch.creditsPerItem };
}
