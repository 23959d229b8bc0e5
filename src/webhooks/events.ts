/** Which webhook events a transition causes (the events themselves: src/domain/webhook-events.ts). */
import type { BatchStatus, ItemCounts } from "../domain/states";
import type { BatchCounts, WebhookEvent, WebhookEventType } from "../domain/webhook-events";

/** The parts of a batch row the events are made from. */
export interface TransitionSide extends ItemCounts {
  batch_id: string;
  status: BatchStatus;
  version: number;
  total: number;
  credits_per_item: number;
  credits_used: number;
  started_at: number | null;
  finished_at: number | null;
}

export interface SettledItem {
  id: string;
  url: string;
  /** The caller's own id and metadata for the item (null when none). */
  customId?: string | null;
  metadata?: Record<string, unknown> | null;
  outcome: "completed" | "failed";
  error: { code: string; message: string } | null;
}

/**
 * The events one transition causes. Pure; ids are derived from the batch and its version,
 * so the same transition always yields the same ids (receivers and the account de-duplicate).
 */
export function eventsFor(before: TransitionSide, after: TransitionSide, settled?: SettledItem): WebhookEvent[] {
  const counts: BatchCounts = {
    total: after.total,
    pending: after.pending,
    running: after.running,
    completed: after.completed,
    failed: after.failed,
    cancelled: after.cancelled,
  };
  const createdAt = new Date().toISOString();
  const make = (type: WebhookEventType, extra: Partial<WebhookEvent["data"]> = {}): WebhookEvent => ({
    id: `evt_${after.batch_id}_${after.version}_${type}`,
    type,
    createdAt,
    batchId: after.batch_id,
    data: { status: after.status, counts, ...extra },
  });
  const events: WebhookEvent[] = [];
  if (before.started_at === null && after.started_at !== null) events.push(make("batch.started"));
  if (settled) {
    events.push(
      make(settled.outcome === "completed" ? "item.completed" : "item.failed", {
        itemId: settled.id,
        customId: settled.customId ?? null,
        metadata: settled.metadata ?? null,
        url: settled.url,
        error: settled.error,
      }),
    );
  }
  if (before.finished_at === null && after.finished_at !== null) {
    if (after.status === "cancelled") {
      events.push(
        make("batch.cancelled", {
          cancelledItems: after.cancelled,
          creditsRefunded: after.cancelled * after.credits_per_item,
          creditsUsed: after.credits_used,
        }),
      );
    } else if (after.status === "completed" || after.status === "failed") {
      events.push(
        make(after.status === "completed" ? "batch.completed" : "batch.failed", { creditsUsed: after.credits_used }),
      );
    }
  }
  return events;
}
