/**
 * When a batch object's one alarm must fire next, and which of its duties decided it.
 * Pure: the object (src/batch/batch-object.ts) gathers the facts and arms the alarm.
 */

/**
 * Settlements wait this long in the outbox to the account so the account gets them many to
 * a call (it is the hot spot: every batch of the account settles there). A finished batch,
 * a cancel and failed deliveries do not wait for it.
 */
export const SETTLEMENT_WINDOW_MS = 250;

/** What may need the alarm; a source that is absent (false, null) needs nothing. */
export interface AlarmSources {
  /** Rows wait in the outbox to the queue: dispatches go at once. */
  toQueue: boolean;
  /** Rows wait in the outbox to the account: they go within the settlement window. */
  toAccount: boolean;
  /** After failed deliveries, the outboxes wait for this time (the backoff) instead. */
  deliveryRetryAt: number | null;
  /** A finished batch's account events go at once: nothing more will join them. */
  finished: boolean;
  /** The earliest lease end of a running item: it is taken back then. */
  leaseEndsAt: number | null;
  /** The batch wants slots it was not granted: ask again then. */
  slotsRetryAt: number | null;
  /** When a dispatched item that has not started counts as lost. */
  lostDispatchAt: number | null;
  /** Retention: when a finished batch is removed; waits while either outbox holds rows. */
  removalAt: number | null;
  /** A cancelled batch's item rows still read `pending` in storage: the sweep's next chunk runs now. */
  sweeping: boolean;
}

/** No source present: a caller spreads it and names only the sources it knows of. */
export const NOTHING_DUE: Readonly<AlarmSources> = {
  toQueue: false,
  toAccount: false,
  deliveryRetryAt: null,
  finished: false,
  leaseEndsAt: null,
  slotsRetryAt: null,
  lostDispatchAt: null,
  removalAt: null,
  sweeping: false,
};

export type AlarmSource =
  | "toQueue"
  | "toAccount"
  | "deliveryRetry"
  | "lease"
  | "slots"
  | "lostDispatch"
  | "removal"
  | "sweep";

export interface NextAlarm {
  at: number;
  /** The source that decided `at` (the first in the order above on a tie). */
  source: AlarmSource;
}

/** The earliest time any present source is due, never before `now` (a past time is due now); null when none is. */
export function nextAlarm(s: AlarmSources, now: number): NextAlarm | null {
  const due: [AlarmSource, number | null][] = [];
  if (s.deliveryRetryAt !== null && (s.toQueue || s.toAccount)) due.push(["deliveryRetry", s.deliveryRetryAt]);
  else if (s.toQueue) due.push(["toQueue", now]);
  else if (s.toAccount) due.push(["toAccount", now + (s.finished ? 0 : SETTLEMENT_WINDOW_MS)]);
  due.push(["lease", s.leaseEndsAt], ["slots", s.slotsRetryAt], ["lostDispatch", s.lostDispatchAt]);
  if (!s.toQueue && !s.toAccount) due.push(["removal", s.removalAt]);
  if (s.sweeping) due.push(["sweep", now]);
  let next: NextAlarm | null = null;
  for (const [source, at] of due) {
    if (at !== null && (next === null || at < next.at)) next = { at, source };
  }
  return next && { at: Math.max(now, next.at), source: next.source };
}
