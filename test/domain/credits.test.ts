import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { applyMovement, type Balances, isBalanced, type MovementKind, ZERO_BALANCES } from "../../src/domain/credits";

describe("applyMovement", () => {
  it("refuses a reservation above the balance, naming both figures", () => {
    const r = applyMovement({ ...ZERO_BALANCES, granted: 5, balance: 5 }, "reserve", 6);
    expect(r).toEqual({ ok: false, code: "INSUFFICIENT_CREDITS", message: "This needs 6 credits; the balance is 5." });
  });

  it.each([-1, 1.5, Number.NaN, Number.MAX_SAFE_INTEGER + 1])("refuses amount %s", (amount) => {
    expect(applyMovement(ZERO_BALANCES, "grant", amount)).toMatchObject({ ok: false, code: "INVALID_AMOUNT" });
  });

  it("refuses to consume or refund more than is reserved", () => {
    const b: Balances = { granted: 10, balance: 8, reserved: 2, used: 0, refunded: 0 };
    expect(applyMovement(b, "consume", 3)).toMatchObject({ ok: false, code: "OVER_RELEASE" });
    expect(applyMovement(b, "refund", 3)).toMatchObject({ ok: false, code: "OVER_RELEASE" });
  });

  it("keeps granted = balance + reserved + used through any sequence of movements", () => {
    const movement = fc.record({
      kind: fc.constantFrom<MovementKind>("grant", "reserve", "consume", "refund"),
      amount: fc.integer({ min: 0, max: 1000 }),
    });
    fc.assert(
      fc.property(fc.array(movement, { maxLength: 200 }), (moves) => {
        let b = ZERO_BALANCES;
        let refunded = 0;
        for (const m of moves) {
          const r = applyMovement(b, m.kind, m.amount);
          if (!r.ok) continue;
          if (m.kind === "refund") refunded += m.amount;
          b = r.next;
          expect(isBalanced(b)).toBe(true);
        }
        expect(b.refunded).toBe(refunded);
      }),
    );
  });
});
