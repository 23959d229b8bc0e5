/**
 * Faults injected into a live batch object (they live in its memory, so an eviction ends
 * them): deliveries to the account that fail, and a retry's reservation call that fails.
 * Each failure that actually happens is counted as a fault injected.
 */
import type { AccountEvent } from "../../../src/domain/account-events";
import { interceptReserveHold, runInBatch } from "../../helpers";
import { count } from "../figures";

type Send = (events: AccountEvent[]) => Promise<void>;

/** The real delivery function of each outbox a fault replaced, to put back when healed. */
const realSends = new WeakMap<object, Send>();

/**
 * The batch's next `failures` deliveries to the account fail (0: every one, until healed).
 * `replyLost`: the account applies them first, and only the reply is lost.
 */
export async function breakOutbox(batchId: string, failures: number, replyLost: boolean): Promise<void> {
  await runInBatch(batchId, (o) => {
    const real = realSends.get(o.toAccount) ?? o.toAccount.send;
    realSends.set(o.toAccount, real);
    let left = failures === 0 ? Number.POSITIVE_INFINITY : failures;
    o.toAccount.send = async (events) => {
      if (left <= 0) return real(events);
      left--;
      if (replyLost) await real(events);
      count("faults");
      throw new Error("injected delivery failure");
    };
  });
}

export async function healOutbox(batchId: string): Promise<void> {
  await runInBatch(batchId, (o) => {
    const real = realSends.get(o.toAccount);
    if (real) o.toAccount.send = real;
    realSends.delete(o.toAccount);
  });
}

/** The batch's next reservation call (a retry) fails: before the account sees it, or with its reply lost. */
export async function breakNextReservation(batchId: string, replyLost: boolean): Promise<void> {
  await interceptReserveHold(batchId, (reserveHold, restore) => async (input) => {
    restore();
    count("faults");
    if (replyLost) await reserveHold(input);
    throw new Error("injected reservation failure");
  });
}
