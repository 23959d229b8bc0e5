/**
 * Who pays for an item that ran. A completed item is charged its price; a failed one is
 * refunded, except a failure after the budgeted work was done: the page was fetched and
 * extraction ran to one of its limits (EXTRACTION_LIMIT). That item is charged, is never
 * put back by itself (it would fail the same way), and a user's retry reserves and
 * charges it again, so no loop of retries is free. See docs/extraction-limits.md.
 */
import type { SettleOutcome } from "./batch-machine";

/** The executor's code for an item stopped by its extraction budget (src/executor/budget.ts). */
export const EXTRACTION_LIMIT = "EXTRACTION_LIMIT";

/** Failure codes that are charged like a completion. */
export const CHARGED_FAILURES: ReadonlySet<string> = new Set([EXTRACTION_LIMIT]);

/** What happens to a finished item's reserved credits. */
export type Charge = "consume" | "refund";

export function isChargedFailure(code: string | null | undefined): boolean {
  return code != null && CHARGED_FAILURES.has(code);
}

export function chargeFor(outcome: SettleOutcome, errorCode: string | null | undefined): Charge {
  return outcome === "completed" || isChargedFailure(errorCode) ? "consume" : "refund";
}
