/**
 * The hold states of the two sides and the mapping between them (src/domain/holds.ts): the
 * stored values never change, and the event the account applies for a stale hold brings its
 * hold to the state that matches the batch's decision.
 */
import { describe, expect, it } from "vitest";
import { ACCOUNT_HOLD, ACCOUNT_HOLD_FOR, BATCH_HOLD, holdEventFor } from "../../src/domain/holds";

describe("hold states", () => {
  it("are stored as these words on each side (old objects keep their rows)", () => {
    expect(Object.values(ACCOUNT_HOLD)).toEqual(["pending", "confirmed", "void"]);
    expect(Object.values(BATCH_HOLD)).toEqual(["reserving", "applied", "abandoned"]);
  });

  it("map from the batch's side to the account's, one to one", () => {
    expect(ACCOUNT_HOLD_FOR).toEqual({ reserving: "pending", applied: "confirmed", abandoned: "void" });
    expect(new Set(Object.values(ACCOUNT_HOLD_FOR)).size).toBe(Object.keys(BATCH_HOLD).length);
  });

  it("a decided batch hold becomes the account event that gives the matching account state", () => {
    expect(holdEventFor(BATCH_HOLD.applied)).toBe("confirm");
    expect(holdEventFor(BATCH_HOLD.abandoned)).toBe("void");
  });
});
