/**
 * An account's credits. Invariant at every step: granted = balance + reserved + used.
 * `refunded` is a running total for display (credits that went back from reserved to balance).
 */
export interface Balances {
  granted: number;
  balance: number;
  reserved: number;
  used: number;
  refunded: number;
}

export type MovementKind = "grant" | "reserve" | "consume" | "refund";

export const ZERO_BALANCES: Balances = { granted: 0, balance: 0, reserved: 0, used: 0, refunded: 0 };

export type MovementResult =
  | { ok: true; next: Balances }
  | { ok: false; code: "INSUFFICIENT_CREDITS" | "INVALID_AMOUNT" | "OVER_RELEASE"; message: string };

/** Applies one credit movement. Pure: the account object persists `next` and the ledger row together. */
export function applyMovement(b: Balances, kind: MovementKind, amount: number): MovementResult {
  if (!Number.isSafeInteger(amount) || amount < 0 || (amount === 0 && kind !== "reserve")) {
    return { ok: false, code: "INVALID_AMOUNT", message: `amount must be a positive integer, got ${amount}` };
  }
  switch (kind) {
    case "grant":
      return { ok: true, next: { ...b, granted: b.granted + amount, balance: b.balance + amount } };
    case "reserve":
      if (b.balance < amount) {
        return {
          ok: false,
          code: "INSUFFICIENT_CREDITS",
          message: `This needs ${amount} credits; the balance is ${b.balance}.`,
        };
      }
      return { ok: true, next: { ...b, balance: b.balance - amount, reserved: b.reserved + amount } };
    case "consume":
    case "refund":
      if (b.reserved < amount) {
        return { ok: false, code: "OVER_RELEASE", message: `cannot ${kind} ${amount}: only ${b.reserved} reserved` };
      }
      return kind === "consume"
        ? { ok: true, next: { ...b, reserved: b.reserved - amount, used: b.used + amount } }
        : {
            ok: true,
            next: { ...b, reserved: b.reserved - amount, balance: b.balance + amount, refunded: b.refunded + amount },
          };
  }
}

export function isBalanced(b: Balances): boolean {
  return b.granted === b.balance + b.reserved + b.used && [b.balance, b.reserved, b.used].every((n) => n >= 0);
}
