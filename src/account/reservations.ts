/**
 * Reservations: credits held for a batch before its batch object applies them, each a
 * pending hold (src/account/holds.ts) that the batch object confirms or voids, or that the
 * alarm asks about past its deadline. Step one of creating a batch takes the
 * Idempotency-Key, picks the batch id, holds the credits, indexes the batch and claims its
 * first slots, all at once; a retry's reservation holds more credits under the key its batch
 * object chose. Both answer a repeat as a replay. Run each in the account object's transaction.
 */
import { holdKeys } from "../domain/account-events";
import { fail, type Failure, type Ok } from "../domain/errors";
import { ACCOUNT_HOLD } from "../domain/holds";
import { addReserved, countActive, indexBatch } from "./batch-index";
import { findHold, takeHold } from "./holds";
import { earlierCreation, recordKey } from "./idempotency";
import { claimSlots, type SlotContext, slotsGrantedTo } from "./slots";

export interface BatchReservationInput {
  total: number;
  /** The batch's output format, kept in the index for listings. */
  output: string;
  amount: number;
  wantedSlots: number;
  /** Batches the account may have pending or running at once (the route's config). */
  maxActiveBatches: number;
  idempotencyKey: string | null;
  requestHash: string | null;
}

export type BatchReservation =
  | Ok<{ batchId: string; holdKey: string; replay: boolean; slotsGranted: number }>
  | Failure;

/** The hold's times: `now`, and when the alarm asks the batch object should it not have answered. */
export interface HoldTimes {
  now: number;
  deadline: number;
}

export function reserveCreate(
  sql: SqlStorage,
  input: BatchReservationInput,
  times: HoldTimes,
  slots: SlotContext,
): BatchReservation {
  const { now } = times;
  if (input.idempotencyKey !== null) {
    const earlier = earlierCreation(sql, input.idempotencyKey, now);
    if (earlier) {
      if (earlier.requestHash !== input.requestHash) {
        return fail("IDEMPOTENCY_KEY_REUSED", "This Idempotency-Key was already used with a different request body.");
      }
      return {
        ok: true,
        batchId: earlier.batchId,
        holdKey: holdKeys.create(earlier.batchId),
        replay: true,
        slotsGranted: slotsGrantedTo(sql, earlier.batchId),
      };
    }
  }
  const active = countActive(sql);
  if (active >= input.maxActiveBatches) {
    return fail(
      "TOO_MANY_ACTIVE_BATCHES",
      `This account already has ${active} batches pending or running (at most ${input.maxActiveBatches}); wait for some to finish.`,
    );
  }
  const batchId = crypto.randomUUID();
  const holdKey = holdKeys.create(batchId);
  const held = takeHold(sql, { key: holdKey, batchId, purpose: "create", amount: input.amount }, times.deadline, now);
  if (!held.ok) return held;
  indexBatch(sql, batchId, { total: input.total, reserved: input.amount, output: input.output }, now);
  if (input.idempotencyKey !== null) recordKey(sql, input.idempotencyKey, input.requestHash, batchId, now);
  const slotsGranted = claimSlots(sql, slots, batchId, 1, input.wantedSlots);
  return { ok: true, batchId, holdKey, replay: false, slotsGranted };
}

/** More credits for a batch (a retry). Idempotent by key; refused once the key is void. */
export function reserveRetry(
  sql: SqlStorage,
  input: { key: string; batchId: string; amount: number },
  times: HoldTimes,
): Ok<{ replay: boolean }> | Failure {
  const existing = findHold(sql, input.key);
  if (existing) {
    return existing.state === ACCOUNT_HOLD.void
      ? fail("RESERVATION_EXPIRED", "This reservation was already released.")
      : { ok: true, replay: true };
  }
  const held = takeHold(sql, { ...input, purpose: "retry" }, times.deadline, times.now);
  if (!held.ok) return held;
  addReserved(sql, input.batchId, input.amount);
  return { ok: true, replay: false };
}
