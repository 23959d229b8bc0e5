import { describe, expect, it } from "vitest";
import { generateApiKey } from "../../src/account/keys";
import { rememberedKeys, verifyKey } from "../../src/http/verified-keys";

const SECRET = "verified-keys-test-secret-0123456789abcdef";
const ACCOUNT = "3f1c0a52-9d4e-4b7a-8c21-5e6f7a8b9c0d";

describe("verifyKey: the MAC and hash of a key, remembered per isolate", () => {
  it("answers the claim of an issued key, the same claim again from memory, frozen", async () => {
    const { apiKey, keyId, keyHash } = await generateApiKey(ACCOUNT, SECRET);
    const first = await verifyKey(apiKey, SECRET);
    expect(first).toEqual({ accountId: ACCOUNT, keyId, keyHash });
    const before = rememberedKeys();
    const again = await verifyKey(apiKey, SECRET);
    expect(again).toBe(first); // from memory: no new entry
    expect(rememberedKeys()).toBe(before);
    expect(Object.isFrozen(again)).toBe(true);
  });

  it("refuses a tampered or made-up key and remembers none of them", async () => {
    const { apiKey } = await generateApiKey(ACCOUNT, SECRET);
    await verifyKey(apiKey, SECRET);
    const before = rememberedKeys();
    const last = apiKey.at(-1) === "0" ? "1" : "0";
    expect(await verifyKey(`${apiKey.slice(0, -1)}${last}`, SECRET)).toBeNull();
    expect(await verifyKey("bsk_not_a_key", SECRET)).toBeNull();
    for (let i = 0; i < 50; i++) {
      const tampered = `${apiKey.slice(0, -4)}${String(i).padStart(4, "0")}`;
      // The MAC is hex: about 1 key in 1,300 ends in 0000..0049, and that one is not tampered.
      if (tampered === apiKey) continue;
      expect(await verifyKey(tampered, SECRET)).toBeNull();
    }
    expect(rememberedKeys()).toBe(before);
  });

  it("forgets everything when the MAC secret changes: a key of the old secret is refused", async () => {
    const { apiKey } = await generateApiKey(ACCOUNT, SECRET);
    expect(await verifyKey(apiKey, SECRET)).not.toBeNull();
    const rotated = `${SECRET}-rotated`;
    expect(await verifyKey(apiKey, rotated)).toBeNull();
    expect(rememberedKeys()).toBe(0);
  });
});
