/**
 * Flow control of a batch: how many of its items may be out at once, and which go next.
 * A batch dispatches into the slots its account granted (the account-wide cap) and at
 * most maxConcurrency; each dispatch is a row of the outbox to the queue with a new
 * dispatch token. Slots it no longer needs go back through the outbox to the account;
 * asking for more is `pump` in the batch object (an await on the account).
 *
 * Everything here runs inside a transaction of the batch object, through FlowHost, as
 * retention.ts does with RetentionHost; `row` is always the batch row as stored.
 */
import type { AccountEvent } from "../domain/account-events";
import type { QueueSend } from "../domain/executor-contract";
import { isTerminalBatch } from "../domain/states";
import type { Env } from "../env";
import { dispatchedBefore, markDispatched, markUndispatched, nextUndispatched } from "./item-rows";
import type { Outbox } from "./outbox";
import type { BatchRow } from "./rows";

/** After a failed slot claim, and while waiting for slots the account has not freed (it also nudges). */
export const SLOT_RETRY_MS = 5_000;
export const SLOT_WAIT_MS = 30_000;
/** A dispatched item that has not started after this long is dispatched again. */
export const DISPATCH_TIMEOUT_MS = 10 * 60_000;
/** Queue delays are capped at 12 hours. */
const MAX_DELAY_SECONDS = 43_200;

/** What flow control needs from the batch object. */
export interface FlowHost {
  sql: SqlStorage;
  env: Pick<Env, "DISPATCH_PAUSED">;
  toAccount: Outbox<AccountEvent>;
  toQueue: Outbox<QueueSend>;
  /** One UPDATE of the batch row; returns the row as now stored. */
  writeBatch(row: BatchRow, patch: Partial<BatchRow>): BatchRow;
}

export function dispatchPaused(env: Pick<Env, "DISPATCH_PAUSED">): boolean {
  return env.DISPATCH_PAUSED === "true";
}

/** Slots the batch could use now: its running and queued items, plus pending ones up to maxConcurrency. */
export function wantedSlots(row: BatchRow): number {
  if (isTerminalBatch(row.status)) return row.running + row.queued;
  return Math.min(row.max_concurrency, row.running + row.pending);
}

/**
 * Fills free slots (maxConcurrency or the grant, minus running and queued items) with
 * pending items, in order, each with a new dispatch token, as rows of the outbox to the queue.
 */
export function dispatch(host: FlowHost, row: BatchRow, now: number): BatchRow {
  if (dispatchPaused(host.env) || isTerminalBatch(row.status)) return row;
  const slots = Math.min(row.max_concurrency, row.slots_granted) - row.running - row.queued;
  if (slots <= 0) return row;
  const next = nextUndispatched(host.sql, slots);
  for (const item of next) {
    const token = item.dispatch_token + 1;
    markDispatched(host.sql, item.idx, token, now);
    const delaySeconds =
      item.not_before === null
        ? 0
        : Math.min(Math.max(0, Math.ceil((item.not_before - now) / 1000)), MAX_DELAY_SECONDS);
    host.toQueue.add({
      kind: "dispatch",
      body: { v: 1, batchId: row.batch_id, itemId: item.id, dispatch: token },
      delaySeconds,
    });
  }
  return next.length > 0 ? host.writeBatch(row, { queued: row.queued + next.length }) : row;
}

/** Gives back, through the outbox to the account, slots this batch holds but no longer needs. */
export function fitSlots(host: FlowHost, row: BatchRow): BatchRow {
  const wanted = wantedSlots(row);
  if (wanted >= row.slots_granted) return row;
  const version = row.slots_version + 1;
  host.toAccount.add({ kind: "slots", version, wanted }, { replacesSameKind: true });
  return host.writeBatch(row, { slots_granted: wanted, slots_version: version, slots_retry_at: null });
}

/** A queue message that never led to a start (lost, or dead-lettered) frees its slot for a new dispatch. */
export function reclaimLostDispatches(host: FlowHost, row: BatchRow, now: number): BatchRow {
  if (row.queued === 0) return row;
  // A delayed message (retry backoff) is not lost before its delay has passed.
  const lost = dispatchedBefore(host.sql, now - DISPATCH_TIMEOUT_MS);
  if (lost.length === 0) return row;
  markUndispatched(host.sql, lost);
  return host.writeBatch(row, { queued: Math.max(0, row.queued - lost.length) });
}

/**
 * The batch row after the account answered a slot claim (`granted`: null when the claim
 * failed): never fewer slots than items out, and when to ask again.
 */
export function afterSlotClaim(
  row: BatchRow,
  granted: number | null,
  wanted: number,
  now: number,
): Pick<BatchRow, "slots_granted" | "slots_retry_at"> {
  return {
    slots_granted: Math.max(granted ?? row.slots_granted, row.running + row.queued),
    slots_retry_at: granted === null ? now + SLOT_RETRY_MS : granted < wanted ? now + SLOT_WAIT_MS : null,
  };
}
