/** Authentication middleware: API keys for the public API, a bearer token for admin routes. */
import type { MiddlewareHandler } from "hono";
import {
  hashesEqual,
  macMatches,
  MIN_MAC_SECRET_LENGTH,
  parseApiKey,
  sha256Hex,
  usableMacSecret,
} from "../account/keys";
import { LIVE_PROTOCOL } from "../batch/live";
import type { AppEnv, Env } from "../env";
import { ApiError } from "./errors";
import { accountObject } from "./objects";
import { AuthFailures, clientAddress } from "./rate-limit";

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

/**
 * Browsers cannot set headers on a WebSocket, so a live view sends its key as a
 * subprotocol: `new WebSocket(url, ["batch-live", key])`, the key being the entry after
 * "batch-live". Only on an upgrade request, and only when there is no x-api-key.
 */
function keyFromWebSocketProtocol(upgrade: string | undefined, protocols: string | undefined): string | undefined {
  if (upgrade?.toLowerCase() !== "websocket" || !protocols) return undefined;
  const list = protocols.split(",").map((p) => p.trim());
  const at = list.indexOf(LIVE_PROTOCOL);
  return at >= 0 ? list[at + 1] || undefined : undefined;
}

/**
 * Reads the key from `x-api-key` (or `?api_key=` where a surface allows it, or the
 * WebSocket subprotocol on an upgrade), checks its MAC (a made-up key wakes no object),
 * asks the account object whether it is valid, and sets `accountId` for the route.
 * Failures are counted per address and per key id (src/http/rate-limit.ts).
 */
export function requireApiKey(options: { allowQueryKey?: boolean } = {}): MiddlewareHandler<AppEnv> {
  return async function requireApiKey(c, next) {
    const key =
      c.req.header("x-api-key") ??
      (options.allowQueryKey ? c.req.query("api_key") : undefined) ??
      keyFromWebSocketProtocol(c.req.header("upgrade"), c.req.header("sec-websocket-protocol"));
    if (!key) throw new ApiError(401, "MISSING_API_KEY", "Missing x-api-key header.");
    const macSecret = requireMacSecret(c.env);
    const failures = new AuthFailures(c.env, clientAddress(c));
    await failures.guardAddress();
    const invalid = new ApiError(403, "INVALID_API_KEY", "Invalid or expired API key.");
    const parsed = parseApiKey(key);
    if (parsed === null || !(await macMatches(parsed, macSecret))) return failures.refuse(invalid);
    await failures.guardKey(parsed.keyId);
    if (!(await accountObject(c.env, parsed.accountId).authenticate(parsed.keyId, await sha256Hex(key)))) {
      return failures.refuse(invalid, parsed.keyId);
    }
    c.set("accountId", parsed.accountId);
    c.set("keyId", parsed.keyId);
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
