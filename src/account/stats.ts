/**
 * One account's share of GET /admin/stats: its batches by state (from the batch index,
 * tombstones included), its credits, and the items not finished, which only the active
 * batch objects know: at most STATS_ACTIVE_BATCHES of them are asked, a few at a time.
 */
import type { Balances } from "../domain/credits";
import type { Env } from "../env";
import { mapBounded } from "../lib/map-bounded";
import { countByStatus, unfinishedBatchIds } from "./batch-index";
import { readBalances } from "./ledger";
import { log } from "../lib/log";

/** Active batches one stats() call asks for their counts, and how many at once. */
const STATS_ACTIVE_BATCHES = 100;
const STATS_CONCURRENCY = 8;

/** `partial`: some active batches were not asked or did not answer. */
export interface AccountStats {
  batches: Record<string, number>;
  items: { pending: number; running: number; queued: number };
  credits: Balances;
  partial: boolean;
  /** Closed (DELETE /admin/accounts/:id): counted apart, its books still in the sums. */
  closed: boolean;
}

/** Everything but `closed`, which the account object reads itself. */
export async function gatherStats(sql: SqlStorage, batches: Env["BATCH"]): Promise<Omit<AccountStats, "closed">> {
  const byStatus = countByStatus(sql);
  const active = unfinishedBatchIds(sql, STATS_ACTIVE_BATCHES + 1);
  const credits = readBalances(sql);
  const answers = await mapBounded(active.slice(0, STATS_ACTIVE_BATCHES), STATS_CONCURRENCY, async (batchId) => {
    try {
      return await batches.getByName(batchId).counts();
    } catch (err) {
      log("warn", "stats: batch did not answer", { batchId, error: String(err) });
      return "unreachable" as const;
    }
  });
  const items = { pending: 0, running: 0, queued: 0 };
  for (const a of answers) {
    if (a === null || a === "unreachable") continue;
    items.pending += a.pending;
    items.running += a.running;
    items.queued += a.queued;
  }
  const partial = active.length > STATS_ACTIVE_BATCHES || answers.includes("unreachable");
  return { batches: byStatus, items, credits, partial };
}
