/** How the batch object's rows look in API responses. */
import type { BatchStatus, ItemStatus } from "../domain/states";
import type { BatchRow, ItemRow } from "./rows";

/** Parsed JSON. Kept shallow on purpose: a recursive type is too deep for RPC stub typing. */
export type Json = string | number | boolean | null | object;

export interface ItemView {
  uuid: string;
  /** The item's position in the batch's `urls`, from 0. */
  index: number;
  /** The caller's own id and metadata for the item, as sent (null when none). */
  customId: string | null;
  metadata: { [key: string]: Json } | null;
  url: string;
  status: ItemStatus;
  result: Json;
  error: { code: string; message: string } | null;
  creditsUsed: number;
  attempts: number;
  startedAt: string | null;
  finishedAt: string | null;
  /** Where the stored result can be read (completed items only). */
  resultUrl: string | null;
  statusCode: number | null;
  finalUrl: string | null;
  durationMs: number | null;
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

export function itemView(row: ItemRow, batchId: string): ItemView {
  return {
    uuid: row.id,
    index: row.idx,
    customId: row.custom_id ?? null,
    metadata: row.metadata == null ? null : (JSON.parse(row.metadata) as { [key: string]: Json }),
    url: row.url,
    status: row.status,
    result: row.result === null ? null : (JSON.parse(row.result) as Json),
    error: row.error === null ? null : JSON.parse(row.error),
    creditsUsed: row.credits_used,
    attempts: row.attempts,
    startedAt: iso(row.started_at),
    finishedAt: iso(row.finished_at),
    resultUrl: row.status === "completed" && row.result_key !== null ? resultPath(batchId, row.id) : null,
    statusCode: row.status_code,
    finalUrl: row.final_url,
    durationMs: row.duration_ms,
  };
}
