import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { awaitsSweep, itemStatusNow } from "../../src/domain/item-status";
import type { ItemStatus } from "../../src/domain/states";

const STATUSES: ItemStatus[] = ["pending", "running", "completed", "failed", "cancelled"];
const CANCEL = 1_700_000_000_000;

describe("itemStatusNow: an item of a cancelled batch before the sweep rewrote its row", () => {
  it("a pending row of a cancelled batch reads cancelled, finished at the cancel", () => {
    expect(itemStatusNow({ status: "pending", finishedAt: null }, CANCEL)).toEqual({
      status: "cancelled",
      finishedAt: CANCEL,
    });
    expect(awaitsSweep({ status: "pending", finishedAt: null }, CANCEL)).toBe(true);
  });

  it.each(STATUSES.filter((s) => s !== "pending"))("a %s row reads as stored, cancelled batch or not", (status) => {
    const stored = { status, finishedAt: 5 };
    expect(itemStatusNow(stored, CANCEL)).toEqual(stored);
    expect(awaitsSweep(stored, CANCEL)).toBe(false);
  });

  it("without a cancel every row reads as stored; the rule is idempotent (a swept row reads the same)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...STATUSES),
        fc.option(fc.nat(), { nil: null }),
        fc.option(fc.nat(), { nil: null }),
        (status, finishedAt, cancelledAt) => {
          const stored = { status, finishedAt };
          expect(itemStatusNow(stored, null)).toEqual(stored);
          const now = itemStatusNow(stored, cancelledAt);
          // What the sweep writes is what was read before it: reading it again changes nothing.
          expect(itemStatusNow(now, cancelledAt)).toEqual(now);
          expect(awaitsSweep(now, cancelledAt)).toBe(false);
        },
      ),
    );
  });
});
