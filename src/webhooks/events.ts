/** The events a batch sends to its webhook. One `batch.cancelled` per cancelled batch, with the final counts. */
import type { BatchStatus } from "../domain/states";

export type WebhookEventType =
  | "batch.started"
  | "item.completed"
  | "item.failed"
  | "batch.completed"
  | "batch.failed"
  | "batch.cancelled";

export interface BatchCounts {
  total: number;
  pending: number;
  running: number;
  completed: number;
  failed: number;
  cancelled: number;
}

export interface WebhookEvent {
  /** Unique per event: receivers de-duplicate on it. */
  id: string;
  type: WebhookEventType;
  createdAt: string;
  batchId: string;
  data: {
    status: BatchStatus;
    counts: BatchCounts;
    itemId?: string;
    url?: string;
    error?: { code: string; message: string } | null;
    cancelledItems?: number;
    creditsRefunded?: number;
    creditsUsed?: number;
  };
}
