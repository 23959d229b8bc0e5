/**
 * The events a batch sends to its webhook. One `batch.cancelled` per cancelled batch, with the
 * final counts. Types only: the batch makes them (src/webhooks/events.ts), the account carries
 * them in its outbox events (src/domain/account-events.ts) and src/webhooks/ delivers them.
 */
import type { BatchStatus, ItemCounts } from "./states";

export type WebhookEventType =
  | "batch.started"
  | "item.completed"
  | "item.failed"
  | "batch.completed"
  | "batch.failed"
  | "batch.cancelled";

export interface BatchCounts extends ItemCounts {
  total: number;
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
    /** item.completed / item.failed: the caller's own id and metadata for the item (null when none). */
    customId?: string | null;
    metadata?: Record<string, unknown> | null;
    url?: string;
    error?: { code: string; message: string } | null;
    cancelledItems?: number;
    creditsRefunded?: number;
    creditsUsed?: number;
  };
}
