/**
 * Cancel all (POST /api/batch/scrape/cancel-all, SerpWow's GET /live/batches/stopall, and
 * closing an account): every active batch
 * of the account cancelled through its own batch object's cancel, so the per-item rule and
 * the refunds are those of one cancel, a few batches at a time, and the tally. Safe to run
 * twice, even at once: each batch object lets exactly one cancel win.
 */
import type { Env } from "../env";
import { mapBounded } from "../lib/map-bounded";
import { log } from "../lib/log";

/** Batch cancels in flight at once. */
const CANCEL_ALL_CONCURRENCY = 16;

/** Named as the primary surface's answer names them. */
export interface CancelAllResult {
  batchesCancelled: number;
  batchesFailedToCancel: number;
  cancelledItems: number;
  creditsRefunded: number;
  batchIds: string[];
}

export const NOTHING_CANCELLED: CancelAllResult = {
  batchesCancelled: 0,
  batchesFailedToCancel: 0,
  cancelledItems: 0,
  creditsRefunded: 0,
  batchIds: [],
};

/** Cancels these batches of `accountId`; one that finished meanwhile, or was never created, is skipped. */
export async function cancelBatches(
  batches: Env["BATCH"],
  accountId: string,
  batchIds: readonly string[],
): Promise<CancelAllResult> {
  const outcomes = await mapBounded(batchIds, CANCEL_ALL_CONCURRENCY, async (batchId) => {
    try {
      const r = await batches.getByName(batchId).cancel(accountId);
      if (r.ok) return { batchId, kind: "cancelled" as const, items: r.cancelledItems, credits: r.creditsRefunded };
      // Finished meanwhile, or never created (its hold was released): nothing to cancel.
      return {
        batchId,
        kind: r.code === "ALREADY_TERMINAL" || r.code === "NOT_FOUND" ? ("skipped" as const) : ("failed" as const),
        items: 0,
        credits: 0,
      };
    } catch (err) {
      log("warn", "cancel-all: cancel failed", { batchId, error: String(err) });
      return { batchId, kind: "failed" as const, items: 0, credits: 0 };
    }
  });
  const cancelled = outcomes.filter((o) => o.kind === "cancelled");
  return {
    batchesCancelled: cancelled.length,
    batchesFailedToCancel: outcomes.filter((o) => o.kind === "failed").length,
    cancelledItems: cancelled.reduce((n, o) => n + o.items, 0),
    creditsRefunded: cancelled.reduce((n, o) => n + o.credits, 0),
    batchIds: cancelled.map((o) => o.batchId),
  };
}
