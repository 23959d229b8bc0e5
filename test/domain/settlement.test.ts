import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { applyMovement, type Balances, isBalanced } from "../../src/domain/credits";
import { releaseFromBatch, type SettlementState } from "../../src/domain/settlement";

const ref = { batchId: "b1", key: "b1:i1:r1:consume" };
const balances: Balances = { granted: 100, balance: 70, reserved: 30, used: 0, refunded: 0 };

describe("releaseFromBatch", () => {
  it("moves the account's credits as applyMovement does and takes them off the batch", () => {
    expect(releaseFromBatch({ balances, batchReserved: 20 }, "consume", 5, ref)).toEqual({
      ok: true,
      next: { balances: { granted: 100, balance: 70, reserved: 25, used: 5, refunded: 0 }, batchReserved: 15 },
    });
    expect(releaseFromBatch({ balances, batchReserved: 20 }, "refund", 20, ref)).toEqual({
      ok: true,
      next: { balances: { granted: 100, balance: 90, reserved: 10, used: 0, refunded: 20 }, batchReserved: 0 },
    });
  });

  it("refuses more than the batch holds (or a batch with no row) before looking at the account", () => {
    expect(releaseFromBatch({ balances, batchReserved: 4 }, "consume", 5, ref)).toEqual({
      ok: false,
      message: "batch b1 holds 4 credits, cannot release 5",
    });
    expect(releaseFromBatch({ balances, batchReserved: null }, "refund", 1, ref)).toEqual({
      ok: false,
      message: "batch b1 holds 0 credits, cannot release 1",
    });
    // Both guards fail: the batch's is the one named.
    expect(releaseFromBatch({ balances, batchReserved: 4 }, "consume", 50, ref)).toMatchObject({
      ok: false,
      message: expect.stringMatching(/^batch b1 holds 4/),
    });
  });

  it("refuses what the account's movement refuses, naming the key", () => {
    expect(releaseFromBatch({ balances, batchReserved: 1000 }, "consume", 31, ref)).toEqual({
      ok: false,
      message: "consume 31 for b1:i1:r1:consume refused: cannot consume 31: only 30 reserved",
    });
    expect(releaseFromBatch({ balances, batchReserved: 10 }, "refund", 0, ref)).toMatchObject({
      ok: false,
      message: expect.stringMatching(/^refund 0 for .* refused: amount must be a positive integer/),
    });
    expect(releaseFromBatch({ balances, batchReserved: 10 }, "consume", 1.5, ref)).toMatchObject({ ok: false });
  });

  it("over any sequence: the books stay balanced, the batch never goes below 0, and a refusal changes nothing", () => {
    const step = fc.record({
      kind: fc.constantFrom<"consume" | "refund">("consume", "refund"),
      amount: fc.integer({ min: -1, max: 12 }),
    });
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 60 }), fc.array(step, { maxLength: 40 }), (held, steps) => {
        let state: SettlementState = {
          balances: { granted: 100, balance: 100 - held, reserved: held, used: 0, refunded: 0 },
          batchReserved: held,
        };
        for (const s of steps) {
          const r = releaseFromBatch(state, s.kind, s.amount, ref);
          const alone = applyMovement(state.balances, s.kind, s.amount);
          if (!r.ok) {
            expect(alone.ok && state.batchReserved! >= s.amount).toBe(false);
            continue;
          }
          expect(alone).toEqual({ ok: true, next: r.next.balances });
          expect(r.next.batchReserved).toBe(state.batchReserved! - s.amount);
          expect(r.next.batchReserved).toBeGreaterThanOrEqual(0);
          expect(isBalanced(r.next.balances)).toBe(true);
          state = r.next;
        }
      }),
    );
  });
});
