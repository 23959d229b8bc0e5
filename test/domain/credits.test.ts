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

  it("moves the books as each accepted movement says", () => {
    let b = ZERO_BALANCES;
    const step = (kind: MovementKind, amount: number) => {
      const r = applyMovement(b, kind, amount);
      if (!r.ok) throw new Error(`${kind} ${amount} refused: ${r.message}`);
      b = r.next;
      return b;
    };
    expect(step("grant", 10)).toEqual({ granted: 10, balance: 10, reserved: 0, used: 0, refunded: 0 });
    expect(step("reserve", 6)).toEqual({ granted: 10, balance: 4, reserved: 6, used: 0, refunded: 0 });
    expect(step("consume", 2)).toEqual({ granted: 10, balance: 4, reserved: 4, used: 2, refunded: 0 });
    expect(step("refund", 3)).toEqual({ granted: 10, balance: 7, reserved: 1, used: 2, refunded: 3 });
    // Exactly the balance may be reserved, and a reservation of 0 is allowed (an empty retry).
    expect(step("reserve", 7)).toEqual({ granted: 10, balance: 0, reserved: 8, used: 2, refunded: 3 });
    expect(step("reserve", 0)).toEqual({ granted: 10, balance: 0, reserved: 8, used: 2, refunded: 3 });
    expect(step("refund", 8)).toEqual({ granted: 10, balance: 8, reserved: 0, used: 2, refunded: 11 });
  });

  it("through any sequence: a movement is refused only when it must be, an accepted one moves exactly its amount, the books stay balanced", () => {
    // What each kind moves, per credit: [granted, balance, reserved, used, refunded].
    const moves: Record<MovementKind, number[]> = {
      grant: [1, 1, 0, 0, 0],
      reserve: [0, -1, 1, 0, 0],
      consume: [0, 0, -1, 1, 0],
      refund: [0, 1, -1, 0, 1],
    };
    const fields = ["granted", "balance", "reserved", "used", "refunded"] as const;
    const accepted: Record<MovementKind, number> = { grant: 0, reserve: 0, consume: 0, refund: 0 };
    const movement = fc.record({
      kind: fc.constantFrom<MovementKind>("grant", "reserve", "consume", "refund"),
      // Small amounts mostly fit, large ones mostly do not; "all" and "one more" are the
      // whole figure the movement draws from (balance or reserved) and one credit past it.
      amount: fc.oneof(
        fc.integer({ min: 0, max: 10 }),
        fc.integer({ min: 0, max: 1000 }),
        fc.constantFrom("all", "one more"),
      ),
    });
    fc.assert(
      fc.property(fc.array(movement, { minLength: 10, maxLength: 200 }), (sequence) => {
        let b = ZERO_BALANCES;
        for (const { kind, amount: asked } of [{ kind: "grant" as const, amount: 50 }, ...sequence]) {
          const whole = kind === "reserve" ? b.balance : kind === "grant" ? 1 : b.reserved;
          const amount = asked === "all" ? whole : asked === "one more" ? whole + 1 : asked;
          const mustRefuse =
            (amount === 0 && kind !== "reserve") ||
            (kind === "reserve" && amount > b.balance) ||
            ((kind === "consume" || kind === "refund") && amount > b.reserved);
          const r = applyMovement(b, kind, amount);
          expect(r.ok).toBe(!mustRefuse);
          if (!r.ok) continue;
          accepted[kind]++;
          // (+ 0 turns a -0 from 0 x -1 into 0.)
          expect(fields.map((f) => r.next[f] - b[f])).toEqual(moves[kind].map((per) => per * amount + 0));
          expect(isBalanced(r.next)).toBe(true);
          b = r.next;
        }
      }),
    );
    // The runs did move credits of every kind, not only refuse.
    for (const kind of Object.keys(accepted) as MovementKind[]) expect(accepted[kind]).toBeGreaterThan(0);
  });
});
