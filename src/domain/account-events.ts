import type { BatchStatus } from "./states";
import type { WebhookEvent } from "./webhook-events";

/**
 * What a batch object tells its account object, through its outbox. Each event is
 * idempotent: money events by their ledger key, holds by their key, status by version.
 */
export type AccountEvent =
  /** The batch applied the hold (created the batch, or re-queued failed items). */
  | { kind: "confirm"; key: string }
  /** The batch will never apply the hold: give the credits back (or refuse it if it comes late). */
  | { kind: "void"; key: string }
  /**
   * `note`: the ledger row's (default "item completed"; a charged failure says so). `outcome`,
   * `items` (a cancel's count) and `durationMs` feed the account's usage by day; events written
   * before they existed lack them (the account then reads the note).
   */
  | {
      kind: "consume";
      key: string;
      amount: number;
      itemId: string;
      note?: string;
      outcome?: "completed" | "failed";
      durationMs?: number | null;
    }
  | {
      kind: "refund";
      key: string;
      amount: number;
      itemId?: string;
      note: string;
      items?: number;
      durationMs?: number | null;
    }
  | { kind: "status"; version: number; snapshot: BatchIndexSnapshot }
  /** A webhook event to sign and deliver to `url` (idempotent by event id). */
  | { kind: "webhook"; url: string; event: WebhookEvent }
  /** The batch now wants (at most) this many of the account's slots. */
  | { kind: "slots"; version: number; wanted: number }
  /**
   * Retention: the batch is about to remove itself. Its index row becomes a tombstone (reads
   * answer BATCH_EXPIRED), its holds, slots and Idempotency-Keys go; the ledger stays.
   * Sent last, and the batch deletes nothing before it is acknowledged.
   */
  | { kind: "forget" };

export interface BatchIndexSnapshot {
  status: BatchStatus;
  completed: number;
  failed: number;
  cancelled: number;
  finishedAt: number | null;
}

/** A hold's answer from the batch object when the account asks about a stale one (src/domain/holds.ts). */
export type { HoldResolution } from "./holds";

export const holdKeys = {
  create: (batchId: string) => `${batchId}:create`,
  retry: (batchId: string, n: number) => `${batchId}:retry:${n}`,
};
