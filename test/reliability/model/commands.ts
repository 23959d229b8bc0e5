/**
 * The commands a model-based sequence is made of, as plain records, so a shrunk
 * counterexample can be pasted into a regression test as it is. Batches and items are
 * named by index (taken modulo what exists), so any list of commands is runnable.
 */
import fc from "fast-check";

export type Cmd =
  /** POST /api/batch/scrape with n URLs (markdown: 1 credit each, json: 2), maybe with an Idempotency-Key. */
  | { kind: "create"; n: number; markdown: boolean; idem: boolean }
  /** The same create request again (same Idempotency-Key and body): a replay. */
  | { kind: "replayCreate"; b: number }
  /** POST /admin/accounts/:id/credits; `replay`: the last grant's key and amount again. */
  | { kind: "grant"; amount: number; replay: boolean }
  /** startItem over RPC, with no dispatch token, the item's latest one, or an older one. */
  | { kind: "start"; b: number; i: number; token: "none" | "latest" | "stale" }
  /** The dispatcher sends a new queue message for a pending item: older messages go stale. */
  | { kind: "redispatch"; b: number; i: number }
  /** completeItem / failItem from the latest attempt, or a late one from the attempt before. */
  | { kind: "complete"; b: number; i: number; older: boolean }
  | { kind: "fail"; b: number; i: number; retryable: boolean; older: boolean }
  /** A failure at an extraction limit: charged, not refunded, and never requeued (even if reported retryable). */
  | { kind: "failCharged"; b: number; i: number; retryable: boolean; older: boolean }
  /** startItems: several starts in one call, as the consumer asks for a queue batch (items may repeat). */
  | { kind: "startGroup"; b: number; is: number[] }
  /** settleItems: several settlements in one call, as the consumer reports them (items may repeat). */
  | { kind: "settleGroup"; b: number; reports: GroupReport[] }
  /** The item's last settlement delivered again (a queue redelivery). */
  | { kind: "repeatSettle"; b: number; i: number }
  /** DELETE /api/batch/scrape/:id */
  | { kind: "cancel"; b: number }
  /** Cancel at the same moment as a startItem for every pending item. */
  | { kind: "raceCancel"; b: number }
  /** POST /api/batch/scrape/:id/retry; the reservation call may fail before or after the account applied it. */
  | { kind: "retry"; b: number; fault: "none" | "lost" | "replyLost" }
  /** Every running item's lease runs out (its consumer died), and the alarm runs. */
  | { kind: "expireLeases"; b: number }
  /** The batch's next `failures` deliveries to the account fail (0: until healed); `replyLost`: applied, reply lost. */
  | { kind: "outboxFault"; b: number; failures: number; replyLost: boolean }
  | { kind: "outboxHeal"; b: number }
  /** The object is evicted from memory (storage kept); in-memory faults go with it. */
  | { kind: "evict"; b: number; account: boolean }
  /** The batch object's alarm runs (runDurableObjectAlarm), if one is set: a cancel's sweep step among its duties. */
  | { kind: "alarm"; b: number }
  /**
   * The runtime resets the batch object (and the account's, if `account`): unlike an eviction
   * it aborts at once, and a call `during` the reset (a start of item `i`, a cancel, an alarm
   * run) fails or not; storage says which. Memory (faults, chunk size) goes, storage stays.
   */
  | { kind: "reset"; b: number; i: number; account: boolean; during: ResetDuring };

export type ResetDuring = "idle" | "start" | "cancel" | "alarm";

/** `charged`: a failed report at an extraction limit. */
export type GroupReport = {
  i: number;
  outcome: "completed" | "failed" | "charged";
  retryable: boolean;
  older: boolean;
};

const b = fc.nat({ max: 7 });
const i = fc.nat({ max: 7 });
/** Late reports from an older attempt: now and then, not half the time. */
const older = fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) });

export const createCmd: fc.Arbitrary<Cmd> = fc.record({
  kind: fc.constant("create" as const),
  n: fc.integer({ min: 1, max: 4 }),
  markdown: fc.boolean(),
  idem: fc.boolean(),
});

export const anyCmd: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 2, arbitrary: createCmd },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("replayCreate" as const), b }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("grant" as const),
      amount: fc.integer({ min: 1, max: 20 }),
      replay: fc.boolean(),
    }),
  },
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant("start" as const),
      b,
      i,
      token: fc.constantFrom("none" as const, "latest" as const, "stale" as const),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("redispatch" as const), b, i }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("complete" as const), b, i, older }) },
  { weight: 5, arbitrary: fc.record({ kind: fc.constant("fail" as const), b, i, retryable: fc.boolean(), older }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant("failCharged" as const), b, i, retryable: fc.boolean(), older }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("repeatSettle" as const), b, i }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("startGroup" as const),
      b,
      is: fc.array(i, { minLength: 1, maxLength: 5 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("settleGroup" as const),
      b,
      reports: fc.array(
        fc.record({
          i,
          outcome: fc.constantFrom("completed" as const, "failed" as const, "charged" as const),
          retryable: fc.boolean(),
          older,
        }),
        { minLength: 1, maxLength: 5 },
      ),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("cancel" as const), b }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("raceCancel" as const), b }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("retry" as const),
      b,
      fault: fc.constantFrom("none" as const, "none" as const, "lost" as const, "replyLost" as const),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant("expireLeases" as const), b }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("outboxFault" as const),
      b,
      failures: fc.integer({ min: 0, max: 3 }),
      replyLost: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("outboxHeal" as const), b }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("evict" as const), b, account: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant("alarm" as const), b }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("reset" as const),
      b,
      i,
      account: fc.boolean(),
      during: fc.constantFrom("idle" as const, "start" as const, "cancel" as const, "alarm" as const),
    }),
  },
);

/** A sequence always opens with a batch, so the rest has something to act on. */
export function sequences(maxLength: number): fc.Arbitrary<Cmd[]> {
  return fc
    .tuple(createCmd, fc.array(anyCmd, { minLength: 1, maxLength, size: "max" }))
    .map(([first, rest]) => [first, ...rest]);
}
