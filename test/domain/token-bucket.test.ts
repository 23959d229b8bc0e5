import { describe, expect, it } from "vitest";
import { retryAfterSeconds, takeToken } from "../../src/domain/token-bucket";

const rate = { perMinute: 600, burst: 3 }; // 10 a second

describe("takeToken", () => {
  it("a new bucket starts full: burst takes, then a refusal naming when the next token comes", () => {
    let bucket = undefined as Parameters<typeof takeToken>[0];
    for (let i = 0; i < 3; i++) {
      const t = takeToken(bucket, rate, 1_000);
      expect(t.ok).toBe(true);
      bucket = t.bucket;
    }
    const refused = takeToken(bucket, rate, 1_000);
    expect(refused).toEqual({ ok: false, bucket: { tokens: 0, at: 1_000 }, retryAfterMs: 100 });
  });

  it("refills at the rate, never above the burst", () => {
    expect(takeToken({ tokens: 0, at: 0 }, rate, 50)).toMatchObject({ ok: false, retryAfterMs: 50 });
    expect(takeToken({ tokens: 0, at: 0 }, rate, 100)).toEqual({ ok: true, bucket: { tokens: 0, at: 100 } });
    expect(takeToken({ tokens: 0, at: 0 }, rate, 3_600_000)).toEqual({
      ok: true,
      bucket: { tokens: 2, at: 3_600_000 },
    });
  });

  it("a clock that goes back refills nothing and keeps the later time", () => {
    expect(takeToken({ tokens: 0.5, at: 1_000 }, rate, 500)).toEqual({
      ok: false,
      bucket: { tokens: 0.5, at: 1_000 },
      retryAfterMs: 50,
    });
  });
});

describe("retryAfterSeconds", () => {
  it("whole seconds, rounded up, at least 1", () => {
    expect([0, 1, 100, 1_000, 1_001, 7_500].map(retryAfterSeconds)).toEqual([1, 1, 1, 1, 2, 8]);
  });
});
