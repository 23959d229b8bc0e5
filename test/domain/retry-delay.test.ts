import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_BACKOFF_MS, retryDelayMs } from "../../src/domain/retry-delay";

// The jitter factor is 0.75 + random / 2: these pin it low, in the middle, and high.
const LOW = () => 0;
const MID = () => 0.5;
const HIGH = () => 1 - 2 ** -53;

describe("retryDelayMs", () => {
  it("doubles with each attempt from the base (jitter pinned at 1)", () => {
    expect([1, 2, 3, 4, 5].map((n) => retryDelayMs(n, 0, 2000, MID))).toEqual([2000, 4000, 8000, 16_000, 32_000]);
    expect([1, 2, 3].map((n) => retryDelayMs(n, 0, 20, MID))).toEqual([20, 40, 80]);
  });

  it("jitters each delay within [0.75, 1.25) of its backoff", () => {
    expect(retryDelayMs(1, 0, 2000, LOW)).toBe(1500);
    expect(retryDelayMs(1, 0, 2000, HIGH)).toBe(2500);
    expect(retryDelayMs(3, 0, 2000, LOW)).toBe(6000);
    expect(retryDelayMs(3, 0, 2000, HIGH)).toBe(10_000);
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempts, r) => {
          const backoff = 2000 * 2 ** (attempts - 1);
          const delay = retryDelayMs(attempts, 0, 2000, () => r);
          expect(delay).toBeGreaterThanOrEqual(backoff * 0.75);
          expect(delay).toBeLessThanOrEqual(backoff * 1.25);
        },
      ),
    );
  });

  it("stops growing at the cap (before jitter)", () => {
    expect(MAX_BACKOFF_MS).toBe(60_000);
    // 2000 x 2^5 = 64 000 is over the cap.
    for (const attempts of [6, 7, 20, 1000]) {
      expect(retryDelayMs(attempts, 0, 2000, MID)).toBe(60_000);
      expect(retryDelayMs(attempts, 0, 2000, LOW)).toBe(45_000);
      expect(retryDelayMs(attempts, 0, 2000, HIGH)).toBe(75_000);
    }
  });

  it("waits at least what Retry-After asked, and the backoff when that is longer", () => {
    expect(retryDelayMs(1, 30, 2000, HIGH)).toBe(30_000);
    expect(retryDelayMs(1, 3600, 2000, MID)).toBe(3_600_000);
    // Retry-After 1 s, but the third attempt's backoff is 8 s.
    expect(retryDelayMs(3, 1, 2000, MID)).toBe(8000);
    // Retry-After 0 (or absent) leaves the backoff alone.
    expect(retryDelayMs(2, 0, 2000, MID)).toBe(4000);
  });

  it("uses Math.random when no source is given: delays vary, within the bounds", () => {
    const delays = Array.from({ length: 50 }, () => retryDelayMs(2, 0, 2000));
    for (const d of delays) {
      expect(d).toBeGreaterThanOrEqual(3000);
      expect(d).toBeLessThanOrEqual(5000);
    }
    expect(new Set(delays).size).toBeGreaterThan(1);
  });
});
