/**
 * Keys this isolate has verified, so a poller's every request does not redo the MAC and the
 * hash: both are pure functions of the key and API_KEY_MAC_SECRET, so a remembered answer
 * is the answer. Only keys that verified are kept (a made-up key cannot fill the memory),
 * at most MAX_REMEMBERED, the least recently used first out. Whether a key is still valid
 * (revoked, expired) is never remembered here: the account or the batch object's copy
 * decides that on every request.
 */
import { macMatches, parseApiKey, sha256Hex } from "../account/keys";
import type { KeyClaim } from "../domain/key-claim";

const MAX_REMEMBERED = 10_000;

let remembered: { secret: string; keys: Map<string, KeyClaim> } | undefined;

/** The key's claim if this server issued it (its MAC is right under `macSecret`), else null. */
export async function verifyKey(key: string, macSecret: string): Promise<KeyClaim | null> {
  if (remembered?.secret !== macSecret) remembered = { secret: macSecret, keys: new Map() };
  const { keys } = remembered;
  const known = keys.get(key);
  if (known !== undefined) {
    keys.delete(key); // most recently used last
    keys.set(key, known);
    return known;
  }
  const parsed = parseApiKey(key);
  if (parsed === null || !(await macMatches(parsed, macSecret))) return null;
  // Frozen: one claim is handed to many requests.
  const claim: KeyClaim = Object.freeze({
    accountId: parsed.accountId,
    keyId: parsed.keyId,
    keyHash: await sha256Hex(key),
  });
  keys.set(key, claim);
  if (keys.size > MAX_REMEMBERED) keys.delete(keys.keys().next().value!);
  return claim;
}

/** How many keys are remembered (for tests). */
export function rememberedKeys(): number {
  return remembered?.keys.size ?? 0;
}
