/**
 * `Authorization: Bearer <api key>` for the Firecrawl-compatible surface (/v2): the key
 * Firecrawl's SDKs send, checked exactly as requireApiKey checks `x-api-key` (MAC first, then
 * the account object; failures counted per address and key id).
 * TODO(merge): src/http/auth.ts is gaining Bearer support; this then becomes requireApiKey.
 */
import type { MiddlewareHandler } from "hono";
import { macMatches, parseApiKey, sha256Hex } from "../../account/keys";
import type { AppEnv } from "../../env";
import { requireMacSecret } from "../auth";
import { ApiError } from "../errors";
import { accountObject } from "../objects";
import { AuthFailures, clientAddress } from "../rate-limit";

export function requireBearerKey(): MiddlewareHandler<AppEnv> {
  return async function requireBearerKey(c, next) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header("authorization") ?? "");
    const key = match?.[1] ?? c.req.header("x-api-key");
    if (!key) {
      throw new ApiError(401, "MISSING_API_KEY", "Missing Authorization: Bearer <api key> header.", {
        "WWW-Authenticate": "Bearer",
      });
    }
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
