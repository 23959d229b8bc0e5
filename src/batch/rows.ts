/** Row shapes of the batch object's tables, and how they read as domain values. */
import type { BatchState, ItemState } from "../domain/batch-machine";
import type { OutputFormat } from "../domain/pricing";
import type { BatchStatus, ItemCounts, ItemStatus } from "../domain/states";

export interface BatchRow extends ItemCounts {
  batch_id: string;
  account_id: string;
  status: BatchStatus;
  output: OutputFormat;
  selectors: string | null;
  max_concurrency: number;
  credits_per_item: number;
  total: number;
  credits_reserved: number;
  credits_used: number;
  credits_refunded: number;
  created_at: number;
  started_at: number | null;
  cancelled_at: number | null;
  finished_at: number | null;
  version: number;
  outbox_failures: number;
  queued: number;
  slots_granted: number;
  slots_version: number;
  slots_retry_at: number | null;
  webhook_url: string | null;
  /** 1: extract the main content only. */
  main_content_only: number;
  /** JSON AiExtraction, or null. */
  ai: string | null;
  /** Sealed cookies until the batch ends, then null. */
  cookies_sealed: string | null;
  /** 1: the batch was created with cookies. */
  had_cookies: number;
  /** JSON ScrapeOptions, or NULL. */
  scrape_options: string | null;
}

export interface ItemRow {
  idx: number;
  id: string;
  url: string;
  status: ItemStatus;
  round: number;
  attempts: number;
  lease_attempt: number | null;
  lease_expires_at: number | null;
  result: string | null;
  error: string | null;
  credits_used: number;
  started_at: number | null;
  finished_at: number | null;
  dispatch_token: number;
  dispatched_at: number | null;
  not_before: number | null;
  result_key: string | null;
  status_code: number | null;
  final_url: string | null;
  duration_ms: number | null;
  /** v8; undefined on a row read before the migration ran. */
  custom_id?: string | null;
  metadata?: string | null;
}

export function countsOf(row: ItemCounts): ItemCounts {
  return {
    pending: row.pending,
    running: row.running,
    completed: row.completed,
    failed: row.failed,
    cancelled: row.cancelled,
  };
}

export function batchState(row: BatchRow): BatchState {
  return { status: row.status, counts: countsOf(row), creditsPerItem: row.credits_per_item };
}

export function itemState(row: ItemRow | undefined): ItemState | undefined {
  return (
    row && {
      status: row.status,
      attempts: row.attempts,
      leaseAttempt: row.lease_attempt,
      dispatchToken: row.dispatch_token,
    }
  );
}
