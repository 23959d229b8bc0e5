/**
 * API keys: `bsk_<account id, 32 hex>_<key id, 16 hex>_<secret, 43 base64url>`.
 * The account id routes the request to its object without a global lookup; only a
 * SHA-256 of the whole key is stored, and hashes are compared in constant time.
 */
const KEY_PATTERN = /^bsk_([0-9a-f]{32})_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export interface ParsedKey {
  accountId: string;
  keyId: string;
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
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

export async function generateApiKey(accountId: string): Promise<{ keyId: string; apiKey: string; keyHash: string }> {
  const keyId = hex(crypto.getRandomValues(new Uint8Array(8)));
  const secret = base64url(crypto.getRandomValues(new Uint8Array(32)));
  const apiKey = `bsk_${compactUuid(accountId)}_${keyId}_${secret}`;
  return { keyId, apiKey, keyHash: await sha256Hex(apiKey) };
}

export function parseApiKey(apiKey: string): ParsedKey | null {
  const match = KEY_PATTERN.exec(apiKey);
  if (!match) return null;
  return { accountId: expandUuid(match[1]!), keyId: match[2]! };
}

/** Constant-time equality of two hex digests of the same length. */
export function hashesEqual(a: string, b: string): boolean {
  const encoder = new TextEncoder();
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  if (x.byteLength !== y.byteLength) return false;
  return crypto.subtle.timingSafeEqual(x, y);
}
