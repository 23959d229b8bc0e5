/**
 * Authentication middleware: API keys for the public API, a bearer token for admin routes.
 *
 * An API key travels as `x-api-key`, as `Authorization: Bearer <key>` (newer Spidra SDKs,
 * Firecrawl clients), as `?api_key=` where a surface allows it (SerpWow), or as a WebSocket
 * subprotocol on an upgrade. The admin token is never an API key and an API key never an
 * admin token: /admin/* compares only with ADMIN_TOKEN, and an admin token sent to /api/*
 * is not a key (no `bsk_` format, no MAC) and is refused as one (403, counted as a failure).
 */
import type { Context, MiddlewareHandler } from "hono";
import { hashesEqual, MIN_MAC_SECRET_LENGTH, sha256Hex, usableMacSecret } from "../account/keys";
import { LIVE_PROTOCOL } from "../batch/live";
import type { KeyClaim } from "../domain/key-claim";
import type { AppEnv, Env } from "../env";
import { ApiError } from "./errors";
import { accountObject } from "./objects";
import { AuthFailures, clientAddress } from "./rate-limit";
import { verifyKey } from "./verified-keys";

/**
 * API_KEY_MAC_SECRET, or 503: without it no key can be checked or issued. The deploy is
 * closed, not open (like admin routes without ADMIN_TOKEN), and /healthz says so.
 */
export function requireMacSecret(env: Env): string {
  const secret = usableMacSecret(env.API_KEY_MAC_SECRET);
  if (secret === null) {
    throw new ApiError(
      503,
      "API_KEYS_DISABLED",
      `API keys are disabled: no API_KEY_MAC_SECRET of at least ${MIN_MAC_SECRET_LENGTH} characters is configured.`,
    );
  }
  return secret;
}

/** What readApiKey reads from: a Hono request (`c.req`) fits. */
export interface KeySource {
  header(name: string): string | undefined;
  query(name: string): string | undefined;
}

export interface KeyOptions {
  /** Also read `?api_key=` (SerpWow's way). Elsewhere a key in a URL would end up in logs and histories. */
  allowQueryKey?: boolean;
}

/**
 * Browsers cannot set headers on a WebSocket, so a live view sends its key as a
 * subprotocol: `new WebSocket(url, ["batch-live", key])`, the key being the entry after
 * "batch-live". Only on an upgrade request.
 */
function keyFromWebSocketProtocol(upgrade: string | undefined, protocols: string | undefined): string | undefined {
  if (upgrade?.toLowerCase() !== "websocket" || !protocols) return undefined;
  const list = protocols.split(",").map((p) => p.trim());
  const at = list.indexOf(LIVE_PROTOCOL);
  return at >= 0 ? list[at + 1] || undefined : undefined;
}

/**
 * `Authorization: Bearer <token>` (the scheme is case-insensitive, RFC 9110): the token, ""
 * for a Bearer with nothing after it; undefined without the header or with another scheme
 * (Basic, say: not a way to send an API key, so it is not read as one).
 */
export function bearerToken(authorization: string | undefined): string | undefined {
  const match = /^bearer(?:\s+(.*))?$/i.exec(authorization?.trim() ?? "");
  return match ? (match[1] ?? "").trim() : undefined;
}

/**
 * The API key a request carries, wherever it is sent; undefined when none (an empty value
 * counts as none). Two different keys in one request (say `x-api-key` and a Bearer token)
 * are refused with 400 CONFLICTING_API_KEYS rather than one picked silently: which one a
 * client meant cannot be known, and neither is checked. The same key twice is fine.
 */
export function readApiKey(req: KeySource, options: KeyOptions = {}): string | undefined {
  const presented = [
    req.header("x-api-key"),
    bearerToken(req.header("authorization")),
    options.allowQueryKey ? req.query("api_key") : undefined,
    keyFromWebSocketProtocol(req.header("upgrade"), req.header("sec-websocket-protocol")),
  ].filter((k): k is string => k !== undefined && k !== "");
  if (new Set(presented).size > 1) {
    throw new ApiError(
      400,
      "CONFLICTING_API_KEYS",
      "The request carries two different API keys (x-api-key, Authorization: Bearer, api_key or the WebSocket protocol); send one.",
    );
  }
  return presented[0];
}

/**
 * Reads the key and checks what needs no object: its format and MAC (a made-up key wakes
 * no object), and the failure limits. Returns the key's claim and the request's failure
 * counter, whose `refuse` a later check calls when the key turns out revoked or expired.
 */
export async function claimApiKey(
  c: Context<AppEnv>,
  options: KeyOptions = {},
): Promise<{ claim: KeyClaim; failures: AuthFailures }> {
  const key = readApiKey(c.req, options);
  if (!key) {
    throw new ApiError(
      401,
      "MISSING_API_KEY",
      "Missing API key: send it in the x-api-key header or as Authorization: Bearer <key>.",
    );
  }
  const macSecret = requireMacSecret(c.env);
  const failures = new AuthFailures(c.env, clientAddress(c));
  await failures.guardAddress();
  const claim = await verifyKey(key, macSecret);
  if (claim === null) return failures.refuse(invalidKey());
  await failures.guardKey(claim.keyId);
  return { claim, failures };
}

export function invalidKey(): ApiError {
  return new ApiError(403, "INVALID_API_KEY", "Invalid or expired API key.");
}

/** Asks the account object whether the claimed key is valid now; sets `accountId` and `keyId`, or refuses (counted). */
export async function confirmWithAccount(c: Context<AppEnv>, claim: KeyClaim, failures: AuthFailures): Promise<void> {
  if (!(await accountObject(c.env, claim.accountId).authenticate(claim.keyId, claim.keyHash))) {
    return failures.refuse(invalidKey(), claim.keyId);
  }
  c.set("accountId", claim.accountId);
  c.set("keyId", claim.keyId);
}

/**
 * Checks the API key and sets `accountId` for the route. Failures are counted per address
 * and per key id (src/http/rate-limit.ts).
 *
 * `batchRead(c)` true: a read of one batch, whose batch object checks the key itself
 * (src/http/batch-reads.ts), so no account object is asked here: the route gets the key's
 * claim (`keyClaim`), and `accountId` once the batch object has accepted the key. Only
 * routes that read through src/http/batch-reads.ts may be named.
 */
export function requireApiKey(
  options: KeyOptions & { batchRead?: (c: Context<AppEnv>) => boolean } = {},
): MiddlewareHandler<AppEnv> {
  return async function requireApiKey(c, next) {
    const { claim, failures } = await claimApiKey(c, options);
    if (options.batchRead?.(c)) {
      c.set("keyClaim", claim);
      c.set("keyId", claim.keyId); // per-key request limits count by it; the MAC proved it ours
      c.set("keyCheck", {
        refuse: () => failures.refuse(invalidKey(), claim.keyId),
        withAccount: () => confirmWithAccount(c, claim, failures),
      });
    } else {
      await confirmWithAccount(c, claim, failures);
    }
    await next();
  };
}

/** `Authorization: Bearer <ADMIN_TOKEN>`. With no token configured, admin routes are closed. */
export function requireAdmin(): MiddlewareHandler<AppEnv> {
  return async function requireAdmin(c, next) {
    const expected = c.env.ADMIN_TOKEN;
    if (!expected)
      throw new ApiError(403, "ADMIN_DISABLED", "Admin routes are disabled: no ADMIN_TOKEN is configured.");
    const match = /^Bearer (.+)$/.exec(c.req.header("authorization") ?? "");
    // Compare digests, so the comparison is constant-time whatever the lengths.
    const ok = match !== null && hashesEqual(await sha256Hex(match[1]!), await sha256Hex(expected));
    if (!ok)
      throw new ApiError(401, "UNAUTHORIZED", "Missing or invalid admin token.", { "WWW-Authenticate": "Bearer" });
    await next();
  };
}
