/**
 * API keys: `bsk_<account id, 32 hex>_<key id, 16 hex>_<secret, 43 base64url>_<mac, 32 hex>`.
 * The account id routes the request to its object without a global lookup. The MAC (the
 * first 16 bytes of HMAC-SHA256 under API_KEY_MAC_SECRET over everything before it) lets
 * the Worker refuse a made-up key before it wakes any object. Only a SHA-256 of the whole
 * key is stored, and hashes and MACs are compared in constant time.
 */
const KEY_PATTERN = /^(bsk_([0-9a-f]{32})_([0-9a-f]{16})_[A-Za-z0-9_-]{43})_([0-9a-f]{32})$/;
const MAC_BYTES = 16;
/** A shorter API_KEY_MAC_SECRET counts as none: keys would be only as strong as it. */
export const MIN_MAC_SECRET_LENGTH = 32;

export interface ParsedKey {
  accountId: string;
  keyId: string;
  /** What the MAC covers: the key without its last segment. */
  signed: string;
  mac: string;
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

function compactUuid(uuid: string): string {
  return uuid.replace(/-/g, "");
}

function expandUuid(h: string): string {
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export async function sha256Hex(text: string): Promise<string> {
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))));
}

/** The configured MAC secret, or null when it is missing or too short to use. */
export function usableMacSecret(secret: string | undefined): string | null {
  return secret !== undefined && secret.length >= MIN_MAC_SECRET_LENGTH ? secret : null;
}

// One imported HMAC key per isolate (the secret changes only with a new deploy).
let macKey: { secret: string; key: Promise<CryptoKey> } | undefined;

async function keyMac(signed: string, macSecret: string): Promise<string> {
  if (macKey?.secret !== macSecret) {
    const raw = new TextEncoder().encode(macSecret);
    macKey = {
      secret: macSecret,
      key: crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]),
    };
  }
  const mac = await crypto.subtle.sign("HMAC", await macKey.key, new TextEncoder().encode(signed));
  return hex(new Uint8Array(mac, 0, MAC_BYTES));
}

export async function generateApiKey(
  accountId: string,
  macSecret: string,
): Promise<{ keyId: string; apiKey: string; keyHash: string }> {
  const keyId = hex(crypto.getRandomValues(new Uint8Array(8)));
  const secret = base64url(crypto.getRandomValues(new Uint8Array(32)));
  const signed = `bsk_${compactUuid(accountId)}_${keyId}_${secret}`;
  const apiKey = `${signed}_${await keyMac(signed, macSecret)}`;
  return { keyId, apiKey, keyHash: await sha256Hex(apiKey) };
}

export function parseApiKey(apiKey: string): ParsedKey | null {
  const match = KEY_PATTERN.exec(apiKey);
  if (!match) return null;
  return { accountId: expandUuid(match[2]!), keyId: match[3]!, signed: match[1]!, mac: match[4]! };
}

/** Whether this server issued the key (or someone holding API_KEY_MAC_SECRET did): no storage, no object. */
export async function macMatches(key: ParsedKey, macSecret: string): Promise<boolean> {
  return hashesEqual(await keyMac(key.signed, macSecret), key.mac);
}

/** Constant-time equality of two hex digests of the same length. */
export function hashesEqual(a: string, b: string): boolean {
  const encoder = new TextEncoder();
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  if (x.byteLength !== y.byteLength) return false;
  return crypto.subtle.timingSafeEqual(x, y);
}
