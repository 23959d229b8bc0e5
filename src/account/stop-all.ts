/**
 * Stop all (POST /admin/accounts/:id/stop-all, and closing an account): every active batch
 * of the account cancelled through its own batch object's cancel, so the per-item rule and
 * the refunds are those of one cancel, a few batches at a time, and the tally. Safe to run
 * twice, even at once: each batch object lets exactly one cancel win.
 */
import type { Env } from "../env";
import { mapBounded } from "../lib/map-bounded";
import { log } from "../lib/log";

/** Batch cancels in flight at once. */
const STOP_ALL_CONCURRENCY = 16;

export interface StopAllResult {
  stopped: number;
  failed: number;
  cancelledItems: number;
  creditsRefunded: number;
  batchIds: string[];
}

export const NOTHING_STOPPED: StopAllResult = {
  stopped: 0,
  failed: 0,
  cancelledItems: 0,
  creditsRefunded: 0,
  batchIds: [],
};

/** Cancels these batches of `accountId`; one that finished meanwhile, or was never created, is skipped. */
export async function cancelBatches(
  batches: Env["BATCH"],
  accountId: string,
  batchIds: readonly string[],
): Promise<StopAllResult> {
  const outcomes = await mapBounded(batchIds, STOP_ALL_CONCURRENCY, async (batchId) => {
    try {
      const r = await batches.getByName(batchId).cancel(accountId);
      if (r.ok) return { batchId, kind: "stopped" as const, items: r.cancelledItems, credits: r.creditsRefunded };
      // Finished meanwhile, or never created (its hold was released): nothing to stop.
      return {
        batchId,
        kind: r.code === "ALREADY_TERMINAL" || r.code === "NOT_FOUND" ? ("skipped" as const) : ("failed" as const),
        items: 0,
        credits: 0,
      };
    } catch (err) {
      log("warn", "stop-all: cancel failed", { batchId, error: String(err) });
      return { batchId, kind: "failed" as const, items: 0, credits: 0 };
    }
  });
  const stopped = outcomes.filter((o) => o.kind === "stopped");
  return {
    stopped: stopped.length,
    failed: outcomes.filter((o) => o.kind === "failed").length,
    cancelledItems: stopped.reduce((n, o) => n + o.items, 0),
    creditsRefunded: stopped.reduce((n, o) => n + o.credits, 0),
    batchIds: stopped.map((o) => o.batchId),
  };
}
