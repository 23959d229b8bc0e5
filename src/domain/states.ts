/** Batch: pending (nothing started) -> running -> completed | failed | cancelled. */
export type BatchStatus = "pending" | "running" | "completed" | "failed" | "cancelled";

/** Item: pending -> running -> completed | failed; pending -> cancelled. */
export type ItemStatus = "pending" | "running" | "completed" | "failed" | "cancelled";

export const TERMINAL_BATCH: ReadonlySet<BatchStatus> = new Set(["completed", "failed", "cancelled"]);
export const TERMINAL_ITEM: ReadonlySet<ItemStatus> = new Set(["completed", "failed", "cancelled"]);

export function isTerminalBatch(status: BatchStatus): boolean {
  return TERMINAL_BATCH.has(status);
}

/** Item counts by state, kept on the batch row so no hot path counts rows. */
export interface ItemCounts {
  pending: number;
  running: number;
  completed: number;
  failed: number;
  cancelled: number;
}
