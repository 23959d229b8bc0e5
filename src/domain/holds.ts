/**
 * A credit hold, as each side records it. The account takes the credits (its hold is
 * `pending`); the batch object applies them or gives them up, and tells the account, which
 * then marks its hold `confirmed` or `void`. The two sides keep their own `holds` table with
 * their own words; the values below are the ones stored, never to be renamed (old objects
 * keep their rows).
 */

/** The account object's hold: credits taken, waiting for the batch; kept; or given back (or refused, should they come late). */
export type AccountHoldState = "pending" | "confirmed" | "void";

/** The batch object's hold: asking the account for credits; applied to the batch; or given up for good. */
export type BatchHoldState = "reserving" | "applied" | "abandoned";

export const ACCOUNT_HOLD = { pending: "pending", confirmed: "confirmed", void: "void" } as const satisfies {
  [S in AccountHoldState]: S;
};
export const BATCH_HOLD = { reserving: "reserving", applied: "applied", abandoned: "abandoned" } as const satisfies {
  [S in BatchHoldState]: S;
};

/**
 * The same hold on both sides, once the account has heard of the batch's decision: while
 * the batch is `reserving`, the account's hold is `pending`; `applied` is `confirmed`;
 * `abandoned` is `void`. (A void hold of a key the account never reserved is a tombstone
 * that refuses the reservation should it still arrive.)
 */
export const ACCOUNT_HOLD_FOR: { readonly [S in BatchHoldState]: AccountHoldState } = {
  reserving: "pending",
  applied: "confirmed",
  abandoned: "void",
};

/** A hold's answer from the batch object when the account asks about a stale one: the batch's decided states. */
export type HoldResolution = Exclude<BatchHoldState, "reserving">;

/** The account event that carries the batch's decision across: `confirm` makes the hold `confirmed`, `void` makes it `void`. */
export type HoldEventKind = "confirm" | "void";

/** The event that brings the account's hold to the state matching the batch's (ACCOUNT_HOLD_FOR). */
export function holdEventFor(resolution: HoldResolution): HoldEventKind {
  return ACCOUNT_HOLD_FOR[resolution] === ACCOUNT_HOLD.confirmed ? "confirm" : "void";
}
