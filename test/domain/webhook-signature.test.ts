import { describe, expect, it } from "vitest";
import { sign, verify } from "../../src/webhooks/signature";

const secret = "whsec_test";
const body = JSON.stringify({ id: "evt_1", type: "batch.cancelled", data: { cancelledItems: 8, creditsRefunded: 16 } });

describe("webhook signatures", () => {
  it("a signed delivery verifies", async () => {
    const ts = Math.floor(Date.now() / 1000);
    const signature = await sign(secret, ts, body);
    expect(signature).toMatch(/^v1=[0-9a-f]{64}$/);
    expect(await verify(secret, { signature, timestamp: String(ts) }, body)).toBe(true);
  });

  it("a tampered body, another secret, another timestamp or an old delivery fails", async () => {
    const ts = Math.floor(Date.now() / 1000);
    const signature = await sign(secret, ts, body);
    expect(await verify(secret, { signature, timestamp: String(ts) }, body.replace("16", "61"))).toBe(false);
    expect(await verify("whsec_other", { signature, timestamp: String(ts) }, body)).toBe(false);
    expect(await verify(secret, { signature, timestamp: String(ts + 1) }, body)).toBe(false);
    const old = ts - 3600;
    expect(await verify(secret, { signature: await sign(secret, old, body), timestamp: String(old) }, body)).toBe(false);
    expect(await verify(secret, { signature: null, timestamp: String(ts) }, body)).toBe(false);
  });
});
