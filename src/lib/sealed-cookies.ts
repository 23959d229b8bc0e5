/**
 * A batch's `cookies`, sealed while they wait between create and the last fetch
 * (docs/api.md, "Cookies"): AES-256-GCM under a key derived (HKDF-SHA256) from the
 * COOKIE_SECRET secret, the batch id bound in as additional data so a sealed value copied
 * to another batch does not open. The batch object stores only the sealed form and drops
 * it when the batch ends; only the executor opens it, just before a fetch.
 */
import { hmacSha256 } from "./hmac";

/** A shorter COOKIE_SECRET counts as none. */
export const MIN_COOKIE_SECRET_LENGTH = 32;
const VERSION = "v1";
const INFO = new TextEncoder().encode("batch-scrape cookies v1");

/** The secret when it is long enough to use, else null (cookies are refused). */
export function usableCookieSecret(secret: string | undefined): string | null {
  return secret !== undefined && secret.length >= MIN_COOKIE_SECRET_LENGTH ? secret : null;
}

async function keyFor(secret: string): Promise<CryptoKey> {
  const material = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), "HKDF", false, ["deriveKey"]);
  return crypto.subtle.deriveKey(
    { name: "HKDF", hash: "SHA-256", salt: new Uint8Array(32), info: INFO },
    material,
    { name: "AES-GCM", length: 256 },
    false,
    ["encrypt", "decrypt"],
  );
}

function toBase64url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64url(text: string): Uint8Array {
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

export async function sealCookies(cookies: string, secret: string, batchId: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const sealed = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: new TextEncoder().encode(batchId) },
    await keyFor(secret),
    new TextEncoder().encode(cookies),
  );
  return `${VERSION}.${toBase64url(iv)}.${toBase64url(new Uint8Array(sealed))}`;
}

/** The cookies, or null when `sealed` does not open under this secret for this batch. */
export async function openCookies(sealed: string, secret: string, batchId: string): Promise<string | null> {
  const [version, iv, data] = sealed.split(".");
  if (version !== VERSION || !iv || !data) return null;
  try {
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: fromBase64url(iv), additionalData: new TextEncoder().encode(batchId) },
      await keyFor(secret),
      fromBase64url(data),
    );
    return new TextDecoder().decode(plain);
  } catch {
    return null;
  }
}

/** A keyed digest of the cookies, for idempotency: tells two requests apart without storing anything reversible. */
export async function cookiesDigest(cookies: string, secret: string): Promise<string> {
  return toBase64url(await hmacSha256(secret, `cookies-idempotency:${cookies}`));
}
