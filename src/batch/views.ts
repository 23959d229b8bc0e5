/** How the batch object's rows look in API responses. */
import type { BatchStatus, ItemStatus } from "../domain/states";
import type { BatchRow, ItemRow } from "./rows";

/** Parsed JSON. Kept shallow on purpose: a recursive type is too deep for RPC stub typing. */
export type Json = string | number | boolean | null | object;

/** An item as Spidra documents it (api-reference/scraping/batch-scrape-status), plus our own fields. */
export interface ItemView {
  uuid: string;
  /** The item's position in the batch's `urls`, from 0. */
  index: number;
  /** The caller's own id and metadata for the item, as sent (null when none). */
  customId: string | null;
  metadata: { [key: string]: Json } | null;
  url: string;
  /** The item's current run (`<item uuid>:r<round>:a<attempt>`), as in our logs; null until it first starts. */
  jobId: string | null;
  status: ItemStatus;
  result: Json;
  /** Spidra's shape: the failure's message, or null. Its machine code is `errorCode`. */
  error: string | null;
  errorCode: string | null;
  creditsUsed: number;
  attempts: number;
  startedAt: string | null;
  finishedAt: string | null;
  /** Where the stored result can be read (completed items only). */
  resultUrl: string | null;
  statusCode: number | null;
  finalUrl: string | null;
  durationMs: number | null;
  /** Always null: this service takes no screenshots (a create asking for one is refused). */
  screenshotUrl: null;
}

export interface BatchView {
  batchId: string;
  status: BatchStatus;
  output: string;
  maxConcurrency: number;
  totalUrls: number;
  pendingCount: number;
  runningCount: number;
  completedCount: number;
  failedCount: number;
  cancelledCount: number;
  creditsPerItem: number;
  creditsReserved: number;
  creditsUsed: number;
  creditsRefunded: number;
  createdAt: string;
  startedAt: string | null;
  cancelledAt: string | null;
  finishedAt: string | null;
}

export function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

export function batchView(row: BatchRow): BatchView {
  return {
    batchId: row.batch_id,
    status: row.status,
    output: row.output,
    maxConcurrency: row.max_concurrency,
    totalUrls: row.total,
    pendingCount: row.pending,
    runningCount: row.running,
    completedCount: row.completed,
    failedCount: row.failed,
    cancelledCount: row.cancelled,
    creditsPerItem: row.credits_per_item,
    creditsReserved: row.credits_reserved,
    creditsUsed: row.credits_used,
    creditsRefunded: row.credits_refunded,
    createdAt: iso(row.created_at)!,
    startedAt: iso(row.started_at),
    cancelledAt: iso(row.cancelled_at),
    finishedAt: iso(row.finished_at),
  };
}

export function resultPath(batchId: string, itemId: string): string {
  return `/api/batch/scrape/${batchId}/items/${itemId}/result`;
}

/** The stored error (JSON `{ code, message }`) as Spidra's string plus our code. */
function errorOf(stored: string | null): { error: string | null; errorCode: string | null } {
  if (stored === null) return { error: null, errorCode: null };
  const parsed = JSON.parse(stored) as { code?: unknown; message?: unknown };
  const code = typeof parsed.code === "string" ? parsed.code : null;
  const message = typeof parsed.message === "string" ? parsed.message : (code ?? "failed");
  return { error: message, errorCode: code };
}

export function jobIdOf(row: Pick<ItemRow, "id" | "round" | "attempts">): string | null {
  return row.attempts === 0 ? null : `${row.id}:r${row.round}:a${row.attempts}`;
}

export function itemView(row: ItemRow, batchId: string): ItemView {
  return {
    uuid: row.id,
    index: row.idx,
    customId: row.custom_id ?? null,
    metadata: row.metadata == null ? null : (JSON.parse(row.metadata) as { [key: string]: Json }),
    url: row.url,
    jobId: jobIdOf(row),
    status: row.status,
    result: row.result === null ? null : (JSON.parse(row.result) as Json),
    ...errorOf(row.error),
    creditsUsed: row.credits_used,
    attempts: row.attempts,
    startedAt: iso(row.started_at),
    finishedAt: iso(row.finished_at),
    resultUrl: row.status === "completed" && row.result_key !== null ? resultPath(batchId, row.id) : null,
    statusCode: row.status_code,
    finalUrl: row.final_url,
    durationMs: row.duration_ms,
    screenshotUrl: null,
  };
}
