import { describe, expect, it } from "vitest";
import { sign, signatureHeader, verify } from "../../src/webhooks/signature";

const secret = "whsec_test";
const body = JSON.stringify({ id: "evt_1", type: "batch.cancelled", data: { cancelledItems: 8, creditsRefunded: 16 } });

/**
 * Known answers, computed outside our code (OpenSSL 3, and Node's crypto agreeing) with
 *   BODY='{"id":"evt_1","type":"batch.cancelled","data":{"cancelledItems":8,"creditsRefunded":16}}'
 *   printf '%s' "1700000000.$BODY" | openssl dgst -sha256 -hmac 'whsec_test'
 *   node -e 'console.log(require("crypto").createHmac("sha256", "whsec_test").update("1700000000." + process.argv[1]).digest("hex"))' "$BODY"
 * and the same with -hmac 'whsec_new' / 'whsec_old' for the rotation header, and with the
 * body's "16" changed to "17" (one byte) for ONE_BYTE_CHANGED_HEX.
 */
const TS = 1_700_000_000;
const TEST_HEX = "78a593f79e29f1784f263544dc623f8da94a03aea88582fa5a84960660d7d4c6";
const NEW_HEX = "669b1a7566b31b0b5e9572dd6a85ac085cf7ab1d491d5b88f39df677d11ee666";
const OLD_HEX = "4ed8cc80abf8bf61ce4b4e1c1b249f10cc1da2711d417e7f095f9304f9db05d5";
const ONE_BYTE_CHANGED_HEX = "4e65770d2d832e4fec070a09e0a2ba4e3e05a99b97048d7f2e078c5d26f8240d";
/** During a rotation's overlap: the new secret's entry first, then the old one's. */
const ROTATION_HEADER = `v1=${NEW_HEX},v1=${OLD_HEX}`;
/**
 * UTF-8 in both secret and body (the HMAC is over bytes, not UTF-16 code units):
 *   B2='{"url":"https://example.com/ü€"}'
 *   printf '%s' "1700000001.$B2" | openssl dgst -sha256 -hmac 'whsec_ütf8'
 */
const UTF8_BODY = '{"url":"https://example.com/ü€"}';
const UTF8_HEX = "0072f77b3aa47f0bdd363e18f4ee9da0799d7617d86b99ad08732ac1dc4ba227";

const at = (signature: string | null, timestamp = String(TS)) => ({ signature, timestamp });
const now = { now: TS };

/** `hex` with its character at `i` changed (one nibble, so one byte of the MAC). */
function flip(hex: string, i: number): string {
  return hex.slice(0, i) + (hex[i] === "0" ? "1" : "0") + hex.slice(i + 1);
}

describe("webhook signatures: known answers", () => {
  it("sign() gives the HMAC-SHA256 that openssl and Node compute", async () => {
    expect(await sign(secret, TS, body)).toBe(`v1=${TEST_HEX}`);
    expect(await sign("whsec_new", TS, body)).toBe(`v1=${NEW_HEX}`);
    expect(await sign("whsec_old", TS, body)).toBe(`v1=${OLD_HEX}`);
    expect(await sign(secret, TS, body.replace("16", "17"))).toBe(`v1=${ONE_BYTE_CHANGED_HEX}`);
    expect(await sign("whsec_ütf8", TS + 1, UTF8_BODY)).toBe(`v1=${UTF8_HEX}`);
  });

  it("one secret: the header is the single v1 entry, as before rotation existed", async () => {
    expect(await signatureHeader([secret], TS, body)).toBe(`v1=${TEST_HEX}`);
  });

  it("two secrets: the header is the rotation vector, newest first", async () => {
    expect(await signatureHeader(["whsec_new", "whsec_old"], TS, body)).toBe(ROTATION_HEADER);
    await expect(signatureHeader([], TS, body)).rejects.toThrow(/at least one/);
  });

  it("verify() accepts the vectors, and refuses a one-byte change of body, signature or timestamp", async () => {
    expect(await verify(secret, at(`v1=${TEST_HEX}`), body, now)).toBe(true);
    expect(await verify("whsec_ütf8", at(`v1=${UTF8_HEX}`, String(TS + 1)), UTF8_BODY, now)).toBe(true);
    expect(await verify(secret, at(`v1=${TEST_HEX}`), body.replace("16", "17"), now)).toBe(false);
    expect(await verify(secret, at(`v1=${flip(TEST_HEX, 0)}`), body, now)).toBe(false);
    expect(await verify(secret, at(`v1=${flip(TEST_HEX, 63)}`), body, now)).toBe(false);
    expect(await verify(secret, at(`v1=${TEST_HEX}`, String(TS + 1)), body, now)).toBe(false);
    expect(await verify("whsec_tesT", at(`v1=${TEST_HEX}`), body, now)).toBe(false);
  });

  it("verify() accepts the rotation header with either secret, and with neither refuses it", async () => {
    expect(await verify("whsec_new", at(ROTATION_HEADER), body, now)).toBe(true);
    expect(await verify("whsec_old", at(ROTATION_HEADER), body, now)).toBe(true);
    expect(await verify(secret, at(ROTATION_HEADER), body, now)).toBe(false);
    // A one-byte change breaks only the entry it is in.
    const newBroken = `v1=${flip(NEW_HEX, 10)},v1=${OLD_HEX}`;
    expect(await verify("whsec_new", at(newBroken), body, now)).toBe(false);
    expect(await verify("whsec_old", at(newBroken), body, now)).toBe(true);
    const oldBroken = `v1=${NEW_HEX},v1=${flip(OLD_HEX, 10)}`;
    expect(await verify("whsec_old", at(oldBroken), body, now)).toBe(false);
    expect(await verify("whsec_new", at(oldBroken), body, now)).toBe(true);
    expect(await verify("whsec_old", at(ROTATION_HEADER), body.replace("16", "17"), now)).toBe(false);
  });

  it("verify() skips schemes it does not know, and does not take a v1 MAC under another scheme name", async () => {
    expect(await verify(secret, at(`v0=abc, v1=${TEST_HEX}`), body, now)).toBe(true);
    expect(await verify(secret, at(`v2=${TEST_HEX}`), body, now)).toBe(false);
    expect(await verify(secret, at(TEST_HEX), body, now)).toBe(false);
  });
});

describe("webhook signatures: round trip", () => {
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
    expect(await verify(secret, { signature: await sign(secret, old, body), timestamp: String(old) }, body)).toBe(
      false,
    );
    expect(await verify(secret, { signature: null, timestamp: String(ts) }, body)).toBe(false);
  });
});
