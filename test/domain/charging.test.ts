/** Who pays for a finished item (src/domain/charging.ts) and when a failure goes back to pending. */
import { describe, expect, it } from "vitest";
import { decideRequeue, type ItemState } from "../../src/domain/batch-machine";
import { chargeFor, isChargedFailure } from "../../src/domain/charging";

const running: ItemState = { status: "running", attempts: 1, leaseAttempt: 1 };

describe("chargeFor", () => {
  it("charges a completion and a failure at an extraction limit; refunds every other failure", () => {
    expect(chargeFor("completed", null)).toBe("consume");
    expect(chargeFor("failed", "EXTRACTION_LIMIT")).toBe("consume");
    for (const code of [
      "HTTP_404",
      "HTTP_503",
      "TIMEOUT",
      "TOO_LARGE",
      "EXTRACTION_FAILED",
      "LEASE_EXPIRED",
      "RESULT_TOO_LARGE",
      null,
    ]) {
      expect({ code, charge: chargeFor("failed", code) }).toEqual({ code, charge: "refund" });
    }
    expect(isChargedFailure(undefined)).toBe(false);
  });
});

describe("decideRequeue", () => {
  it("puts a retryable failure back while attempts are left and the batch is live", () => {
    expect(decideRequeue(running, { code: "HTTP_503", retryable: true }, "running")).toBe(true);
    expect(decideRequeue({ ...running, attempts: 3 }, { code: "HTTP_503", retryable: true }, "running")).toBe(false);
    expect(decideRequeue(running, { code: "HTTP_503", retryable: true }, "cancelled")).toBe(false);
    expect(decideRequeue(running, { code: "HTTP_404", retryable: false }, "running")).toBe(false);
  });

  it("never puts back a charged failure, even one reported as retryable", () => {
    expect(decideRequeue(running, { code: "EXTRACTION_LIMIT", retryable: true }, "running")).toBe(false);
  });
});
