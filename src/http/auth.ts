/** Authentication middleware: API keys for the public API, a bearer token for admin routes. */
import type { MiddlewareHandler } from "hono";
import { hashesEqual, parseApiKey, sha256Hex } from "../account/keys";
import { LIVE_PROTOCOL } from "../batch/live";
import type { AppEnv } from "../env";
import { ApiError } from "./errors";
import { accountObject } from "./objects";

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
 * WebSocket subprotocol on an upgrade), asks the account object whether it is valid, and
 * sets `accountId` for the route.
 */
export function requireApiKey(options: { allowQueryKey?: boolean } = {}): MiddlewareHandler<AppEnv> {
  return async function requireApiKey(c, next) {
    const key =
      c.req.header("x-api-key") ??
      (options.allowQueryKey ? c.req.query("api_key") : undefined) ??
      keyFromWebSocketProtocol(c.req.header("upgrade"), c.req.header("sec-websocket-protocol"));
    if (!key) throw new ApiError(401, "MISSING_API_KEY", "Missing x-api-key header.");
    const parsed = parseApiKey(key);
    const valid = parsed !== null && (await accountObject(c.env, parsed.accountId).authenticate(parsed.keyId, await sha256Hex(key)));
    if (!valid || !parsed) throw new ApiError(403, "INVALID_API_KEY", "Invalid or expired API key.");
    c.set("accountId", parsed.accountId);
    c.set("keyId", parsed.keyId);
    await next();
  };
}

/** `Authorization: Bearer <ADMIN_TOKEN>`. With no token configured, admin routes are closed. */
export function requireAdmin(): MiddlewareHandler<AppEnv> {
  return async function requireAdmin(c, next) {
    const expected = c.env.ADMIN_TOKEN;
    if (!expected) throw new ApiError(403, "ADMIN_DISABLED", "Admin routes are disabled: no ADMIN_TOKEN is configured.");
    const match = /^Bearer (.+)$/.exec(c.req.header("authorization") ?? "");
    // Compare digests, so the comparison is constant-time whatever the lengths.
    const ok = match !== null && hashesEqual(await sha256Hex(match[1]!), await sha256Hex(expected));
    if (!ok) throw new ApiError(401, "UNAUTHORIZED", "Missing or invalid admin token.", { "WWW-Authenticate": "Bearer" });
    await next();
  };
}
