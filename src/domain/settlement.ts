import { applyMovement, type Balances } from "./credits";

/**
 * What one settlement (a consume or a refund of a batch's credits) reads and changes: the
 * account's balances and the credits its batch still holds (null: the account has no index
 * row for the batch, so it holds nothing).
 */
export interface SettlementState {
  balances: Balances;
  batchReserved: number | null;
}

export type SettlementResult = { ok: true; next: SettlementState } | { ok: false; message: string };

/**
 * Releases `amount` of a batch's credits, as used (consume) or back to the balance (refund).
 * Pure: the account object keeps the state for a whole call and writes it once. Refused when
 * the batch holds less than `amount`, then when the account's movement is refused (more than
 * the account holds, or not a positive integer); the messages name the key and the figures.
 */
export function releaseFromBatch(
  state: SettlementState,
  kind: "consume" | "refund",
  amount: number,
  ref: { batchId: string; key: string },
): SettlementResult {
  const held = state.batchReserved;
  if (held === null || held < amount) {
    return { ok: false, message: `batch ${ref.batchId} holds ${held ?? 0} credits, cannot release ${amount}` };
  }
  const moved = applyMovement(state.balances, kind, amount);
  if (!moved.ok) return { ok: false, message: `${kind} ${amount} for ${ref.key} refused: ${moved.message}` };
  return { ok: true, next: { balances: moved.next, batchReserved: held - amount } };
}
