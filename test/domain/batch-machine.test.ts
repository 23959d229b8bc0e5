import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type BatchState,
  batchStatusFor,
  decideCancel,
  decideRetry,
  decideSettle,
  decideStart,
  type ItemState,
  isFinished,
  moveItems,
} from "../../src/domain/batch-machine";
import type { ItemCounts } from "../../src/domain/states";

const pendingItem: ItemState = { status: "pending", attempts: 0, leaseAttempt: null };
const counts = (c: Partial<ItemCounts>): ItemCounts => ({
  pending: 0,
  running: 0,
  completed: 0,
  failed: 0,
  cancelled: 0,
  ...c,
});
const batch = (status: BatchState["status"], c: Partial<ItemCounts>): BatchState => ({
  status,
  counts: counts(c),
  creditsPerItem: 2,
});

describe("decideStart", () => {
  it("starts a pending item of a live batch with the next attempt number", () => {
    expect(decideStart(batch("running", { pending: 1 }), { ...pendingItem, attempts: 1 })).toEqual({
      kind: "start",
      attempt: 2,
    });
  });
  it("drops work for a cancelled batch even if the item were pending", () => {
    expect(decideStart(batch("cancelled", { pending: 1 }), pendingItem)).toEqual({
      kind: "drop",
      reason: "BATCH_CANCELLED",
    });
  });
  it.each(["running", "completed", "failed", "cancelled"] as const)("drops an item that is %s", (status) => {
    expect(decideStart(batch("running", {}), { status, attempts: 1, leaseAttempt: 1 })).toEqual({
      kind: "drop",
      reason: "ITEM_NOT_PENDING",
    });
  });
});

describe("decideSettle", () => {
  const running: ItemState = { status: "running", attempts: 2, leaseAttempt: 2 };
  it("settles only the lease holder", () => {
    expect(decideSettle(running, 2, "completed")).toEqual({ kind: "settle" });
    expect(decideSettle(running, 1, "completed")).toEqual({ kind: "ignore", reason: "STALE_ATTEMPT" });
  });
  it("treats a repeat of the same settlement as a duplicate, and a contradicting one as ignored", () => {
    const done: ItemState = { status: "completed", attempts: 2, leaseAttempt: 2 };
    expect(decideSettle(done, 2, "completed")).toEqual({ kind: "duplicate" });
    expect(decideSettle(done, 2, "failed")).toEqual({ kind: "ignore", reason: "ITEM_NOT_RUNNING" });
  });
});

describe("decideCancel", () => {
  it("cancels pending items only, refunding them at the batch's price", () => {
    expect(decideCancel(batch("running", { pending: 8, running: 2 }))).toEqual({
      kind: "cancel",
      cancelledItems: 8,
      creditsRefunded: 16,
    });
  });
  it.each(["completed", "failed", "cancelled"] as const)("refuses a %s batch with the seed's message", (status) => {
    expect(decideCancel(batch(status, {}))).toEqual({
      kind: "reject",
      code: "ALREADY_TERMINAL",
      message: `Cannot cancel a batch that is already ${status}.`,
    });
  });
});

describe("decideRetry", () => {
  it("retries every failed item at the batch's price", () => {
    expect(decideRetry(batch("completed", { failed: 3, completed: 1 }), false)).toEqual({
      kind: "retry",
      count: 3,
      credits: 6,
    });
  });
  it("refuses a cancelled batch, a retry in progress, and a batch with no failures", () => {
    expect(decideRetry(batch("cancelled", { failed: 1 }), false)).toMatchObject({ code: "BATCH_CANCELLED" });
    expect(decideRetry(batch("running", { failed: 1 }), true)).toMatchObject({ code: "RETRY_IN_PROGRESS" });
    expect(decideRetry(batch("running", { pending: 1 }), false)).toMatchObject({ code: "NO_FAILED_ITEMS" });
  });
});

describe("batchStatusFor", () => {
  it("derives the status from counts", () => {
    expect(batchStatusFor("pending", counts({ pending: 2 }), false)).toBe("pending");
    expect(batchStatusFor("pending", counts({ pending: 1, running: 1 }), true)).toBe("running");
    expect(batchStatusFor("running", counts({ completed: 1, failed: 1 }), true)).toBe("completed");
    expect(batchStatusFor("running", counts({ failed: 2 }), true)).toBe("failed");
    expect(batchStatusFor("failed", counts({ pending: 2 }), true)).toBe("running");
    expect(batchStatusFor("cancelled", counts({ running: 1 }), true)).toBe("cancelled");
  });
});

/**
 * A small model of one batch: random commands against the pure functions. After every
 * step, items are in exactly one state, nothing starts after cancel, and the credits the
 * batch holds equal (pending + running) x price.
 */
describe("batch model", () => {
  type Cmd = { op: "start" | "complete" | "fail" | "failRetryable" | "cancel" | "retry"; item: number };
  const cmd = fc.record({
    op: fc.constantFrom<Cmd["op"]>("start", "complete", "fail", "failRetryable", "cancel", "retry"),
    item: fc.nat({ max: 9 }),
  });

  it("keeps every invariant over random command sequences", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10 }), fc.array(cmd, { maxLength: 80 }), (n, cmds) => {
        const price = 2;
        let state: BatchState = { status: "pending", counts: counts({ pending: n }), creditsPerItem: price };
        const items: ItemState[] = Array.from({ length: n }, () => ({ ...pendingItem }));
        let everStarted = false;
        let reserved = n * price;
        let used = 0;
        let refunded = 0;
        let cancelled = false;

        for (const c of cmds) {
          const i = c.item % n;
          const item = items[i]!;
          if (c.op === "start") {
            const d = decideStart(state, item);
            if (cancelled) expect(d.kind).toBe("drop");
            if (d.kind === "start") {
              items[i] = { status: "running", attempts: d.attempt, leaseAttempt: d.attempt };
              state = { ...state, counts: moveItems(state.counts, "pending", "running") };
              everStarted = true;
            }
          } else if (c.op === "complete" || c.op === "fail" || c.op === "failRetryable") {
            const outcome = c.op === "complete" ? "completed" : "failed";
            const d = decideSettle(item, item.leaseAttempt ?? 0, outcome);
            if (d.kind === "settle") {
              if (c.op === "failRetryable" && item.attempts < 3 && !cancelled) {
                items[i] = { ...item, status: "pending", leaseAttempt: null };
                state = { ...state, counts: moveItems(state.counts, "running", "pending") };
              } else {
                items[i] = { ...item, status: outcome };
                state = { ...state, counts: moveItems(state.counts, "running", outcome) };
                if (outcome === "completed") used += price;
                else refunded += price;
              }
            }
          } else if (c.op === "cancel") {
            const d = decideCancel(state);
            if (d.kind === "cancel") {
              items.forEach((it, k) => {
                if (it.status === "pending") items[k] = { ...it, status: "cancelled" };
              });
              state = {
                ...state,
                status: "cancelled",
                counts: moveItems(state.counts, "pending", "cancelled", d.cancelledItems),
              };
              refunded += d.creditsRefunded;
              cancelled = true;
            }
          } else {
            const d = decideRetry(state, false);
            if (d.kind === "retry") {
              items.forEach((it, k) => {
                if (it.status === "failed") items[k] = { status: "pending", attempts: 0, leaseAttempt: null };
              });
              state = { ...state, counts: moveItems(state.counts, "failed", "pending", d.count) };
              reserved += d.credits;
            }
          }
          state = { ...state, status: batchStatusFor(state.status, state.counts, everStarted) };

          // Invariants.
          const tally = counts({});
          for (const it of items) tally[it.status]++;
          expect(tally).toEqual(state.counts);
          expect(reserved - used - refunded).toBe((state.counts.pending + state.counts.running) * price);
          if (isFinished(state.counts) && !cancelled) expect(["completed", "failed"]).toContain(state.status);
          if (cancelled) expect(state.status).toBe("cancelled");
        }
      }),
      { numRuns: 300 },
    );
  });
});
