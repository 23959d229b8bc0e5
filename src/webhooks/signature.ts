/**
 * Webhook signatures: `X-Webhook-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`
 * with `X-Webhook-Timestamp: <unix seconds>`. Signing the timestamp with the body lets a
 * receiver refuse replays of old deliveries. The scheme is versioned (v1) so it can change.
 *
 * The header is a comma-separated list of `<scheme>=<signature>`. With one secret it holds one
 * entry, exactly as before rotation existed; while a rotated-out secret still signs, it holds
 * one per secret, newest first (`v1=<new>,v1=<old>`). A receiver accepts the delivery when any
 * entry of a scheme it knows matches, and skips schemes it does not know.
 */
import { hmacSha256 } from "../lib/hmac";
export const SIGNATURE_HEADER = "x-webhook-signature";
export const TIMESTAMP_HEADER = "x-webhook-timestamp";
export const EVENT_ID_HEADER = "x-webhook-id";
export const SCHEME = "v1";

async function hmacHex(secret: string, message: string): Promise<string> {
  return Array.from(await hmacSha256(secret, message), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** One entry: `v1=<hex>`. */
export async function sign(secret: string, timestamp: number, body: string): Promise<string> {
  return `${SCHEME}=${await hmacHex(secret, `${timestamp}.${body}`)}`;
}

/** The whole header value: one entry per secret, in the order given (the newest first). */
export async function signatureHeader(secrets: readonly string[], timestamp: number, body: string): Promise<string> {
  if (secrets.length === 0) throw new Error("a webhook delivery needs at least one signing secret");
  return (await Promise.all(secrets.map((s) => sign(s, timestamp, body)))).join(",");
}

/** The header's `v1` entries (as `v1=<hex>`); entries of other schemes are skipped. */
export function v1Entries(header: string): string[] {
  return header
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry.startsWith(`${SCHEME}=`));
}

/**
 * What a receiver does: recompute and compare in constant time with every v1 entry, and
 * refuse timestamps older than `toleranceSeconds` (replays).
 */
export async function verify(
  secret: string,
  header: { signature: string | null; timestamp: string | null },
  body: string,
  options: { toleranceSeconds?: number; now?: number } = {},
): Promise<boolean> {
  const timestamp = Number(header.timestamp);
  if (!header.signature || !Number.isSafeInteger(timestamp)) return false;
  const now = options.now ?? Math.floor(Date.now() / 1000);
  if (Math.abs(now - timestamp) > (options.toleranceSeconds ?? 300)) return false;
  const expected = new TextEncoder().encode(await sign(secret, timestamp, body));
  let matched = false;
  for (const entry of v1Entries(header.signature)) {
    const given = new TextEncoder().encode(entry);
    // Every entry is compared (no early exit), so timing does not say which one matched.
    if (expected.byteLength === given.byteLength && crypto.subtle.timingSafeEqual(expected, given)) matched = true;
  }
  return matched;
}
