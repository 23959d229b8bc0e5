/**
 * Webhook signatures: `X-Webhook-Signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`
 * with `X-Webhook-Timestamp: <unix seconds>`. Signing the timestamp with the body lets a
 * receiver refuse replays of old deliveries. The scheme is versioned (v1) so it can change.
 */
export const SIGNATURE_HEADER = "x-webhook-signature";
export const TIMESTAMP_HEADER = "x-webhook-timestamp";
export const EVENT_ID_HEADER = "x-webhook-id";
export const SCHEME = "v1";

async function hmacHex(secret: string, message: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(message)));
  return Array.from(mac, (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function sign(secret: string, timestamp: number, body: string): Promise<string> {
  return `${SCHEME}=${await hmacHex(secret, `${timestamp}.${body}`)}`;
}

/**
 * What a receiver does: recompute and compare in constant time, and refuse timestamps
 * older than `toleranceSeconds` (replays).
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
  const given = new TextEncoder().encode(header.signature);
  return expected.byteLength === given.byteLength && crypto.subtle.timingSafeEqual(expected, given);
}
