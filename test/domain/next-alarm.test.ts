import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type AlarmSources, nextAlarm, NOTHING_DUE, SETTLEMENT_WINDOW_MS } from "../../src/domain/next-alarm";

const NOW = 1_000_000;
const at = (s: Partial<AlarmSources>) => nextAlarm({ ...NOTHING_DUE, ...s }, NOW);

describe("nextAlarm", () => {
  it("is null when nothing is due", () => {
    expect(at({})).toBeNull();
    // A finished batch with no removal time and a backoff with nothing to send need no alarm.
    expect(at({ finished: true, deliveryRetryAt: NOW + 1_000 })).toBeNull();
  });

  it.each<[string, Partial<AlarmSources>, number, string]>([
    ["queue sends go now", { toQueue: true }, NOW, "toQueue"],
    ["account events wait the settlement window", { toAccount: true }, NOW + SETTLEMENT_WINDOW_MS, "toAccount"],
    ["a finished batch's account events go now", { toAccount: true, finished: true }, NOW, "toAccount"],
    ["queue sends take both outboxes along at once", { toQueue: true, toAccount: true }, NOW, "toQueue"],
    [
      "after failed deliveries the outboxes wait for the backoff",
      { toQueue: true, deliveryRetryAt: NOW + 4_000 },
      NOW + 4_000,
      "deliveryRetry",
    ],
    [
      "the backoff holds account events too, finished or not",
      { toAccount: true, finished: true, deliveryRetryAt: NOW + 4_000 },
      NOW + 4_000,
      "deliveryRetry",
    ],
    ["a lease ending before the window wins", { toAccount: true, leaseEndsAt: NOW + 100 }, NOW + 100, "lease"],
    ["the earliest lease", { leaseEndsAt: NOW + 60_000 }, NOW + 60_000, "lease"],
    [
      "a slot claim waiting to be retried",
      { slotsRetryAt: NOW + 5_000, leaseEndsAt: NOW + 60_000 },
      NOW + 5_000,
      "slots",
    ],
    ["a slot claim due already is asked now", { slotsRetryAt: NOW - 5_000 }, NOW, "slots"],
    ["a lost dispatch", { lostDispatchAt: NOW + 600_000, removalAt: NOW + 700_000 }, NOW + 600_000, "lostDispatch"],
    [
      "retention when the outboxes are empty",
      { finished: true, removalAt: NOW + 86_400_000 },
      NOW + 86_400_000,
      "removal",
    ],
    [
      "retention waits for the account events",
      { toAccount: true, finished: true, deliveryRetryAt: NOW + 9_000, removalAt: NOW - 1 },
      NOW + 9_000,
      "deliveryRetry",
    ],
    [
      "retention waits for the queue sends",
      { toQueue: true, deliveryRetryAt: NOW + 9_000, removalAt: NOW - 1, leaseEndsAt: NOW + 10_000 },
      NOW + 9_000,
      "deliveryRetry",
    ],
    ["a removal already due is done now", { removalAt: NOW - 1_000 }, NOW, "removal"],
    ["a tie goes to the outbox", { toQueue: true, leaseEndsAt: NOW }, NOW, "toQueue"],
    ["a cancel's sweep runs its next chunk now", { sweeping: true, leaseEndsAt: NOW + 60_000 }, NOW, "sweep"],
    [
      "the sweep does not wait for a delivery backoff",
      { sweeping: true, toAccount: true, deliveryRetryAt: NOW + 9_000 },
      NOW,
      "sweep",
    ],
  ])("%s", (_name, sources, expectedAt, source) => {
    expect(at(sources)).toEqual({ at: expectedAt, source });
  });
});

const time = fc.option(fc.integer({ min: NOW - 1_000_000, max: NOW + 1_000_000 }), { nil: null });
const sources: fc.Arbitrary<AlarmSources> = fc.record({
  toQueue: fc.boolean(),
  toAccount: fc.boolean(),
  deliveryRetryAt: fc.option(fc.integer({ min: NOW, max: NOW + 300_000 }), { nil: null }),
  finished: fc.boolean(),
  leaseEndsAt: time,
  slotsRetryAt: time,
  lostDispatchAt: time,
  removalAt: time,
  sweeping: fc.boolean(),
});

/** The time each present source asks for, by its own rule alone (unclamped). */
function asked(s: AlarmSources): Record<string, number> {
  const out: Record<string, number> = {};
  const sending = s.toQueue || s.toAccount;
  if (sending && s.deliveryRetryAt !== null) out.deliveryRetry = s.deliveryRetryAt;
  else if (s.toQueue) out.toQueue = NOW;
  else if (s.toAccount) out.toAccount = NOW + (s.finished ? 0 : SETTLEMENT_WINDOW_MS);
  if (s.leaseEndsAt !== null) out.lease = s.leaseEndsAt;
  if (s.slotsRetryAt !== null) out.slots = s.slotsRetryAt;
  if (s.lostDispatchAt !== null) out.lostDispatch = s.lostDispatchAt;
  if (!sending && s.removalAt !== null) out.removal = s.removalAt;
  if (s.sweeping) out.sweep = NOW;
  return out;
}

describe("nextAlarm, any sources", () => {
  it("is the earliest present source, never before now, and null exactly when nothing is due", () => {
    fc.assert(
      fc.property(sources, (s) => {
        const next = nextAlarm(s, NOW);
        const times = Object.values(asked(s));
        if (times.length === 0) return next === null;
        expect(next).not.toBeNull();
        expect(next!.at).toBe(Math.max(NOW, Math.min(...times)));
        expect(next!.at).toBeGreaterThanOrEqual(NOW);
        // The source it names asked for that very time.
        expect(Math.max(NOW, asked(s)[next!.source]!)).toBe(next!.at);
        return true;
      }),
    );
  });

  it("one more source never makes the alarm later", () => {
    fc.assert(
      fc.property(
        sources,
        fc.constantFrom("leaseEndsAt", "slotsRetryAt", "lostDispatchAt"),
        fc.integer({ min: NOW - 1_000, max: NOW + 1_000_000 }),
        (s, key, t) => {
          const before = nextAlarm({ ...s, [key]: null }, NOW);
          const after = nextAlarm({ ...s, [key]: t }, NOW)!;
          expect(after.at).toBeLessThanOrEqual(Math.max(NOW, t));
          if (before) expect(after.at).toBeLessThanOrEqual(before.at);
        },
      ),
    );
  });

  it("while an outbox holds rows, retention does not move the alarm", () => {
    fc.assert(
      fc.property(sources, time, (s, removalAt) => {
        fc.pre(s.toQueue || s.toAccount);
        expect(nextAlarm({ ...s, removalAt }, NOW)).toEqual(nextAlarm({ ...s, removalAt: null }, NOW));
      }),
    );
  });
});
