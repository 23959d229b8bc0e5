/**
 * Per-key rate limits on the calls that cost the most (creating and cancelling batches) and
 * on rotating the webhook secret, through Workers rate-limit bindings. Over the limit: 429
 * with Retry-After.
 */
import type { Context, MiddlewareHandler } from "hono";
import type { AppEnv } from "../env";
import { ApiError } from "./errors";
import { accountObject } from "./objects";

/** The period the limiter bindings count over (wrangler.toml: simple.period). */
const PERIOD_SECONDS = 60;

/**
 * A create whose Idempotency-Key the account already holds is a client retrying a request
 * that may have succeeded: it can only get the same batch back (or 422 for another body),
 * never a new one, so it is not told to slow down. Asked only when over the limit.
 */
async function isReplay(c: Context<AppEnv>): Promise<boolean> {
  const key = c.req.header("idempotency-key");
  if (!key) return false;
  return accountObject(c.env, c.get("accountId")).holdsIdempotencyKey(key).catch(() => false);
}

export function rateLimit(binding: "CREATE_LIMITER" | "CANCEL_LIMITER" | "WEBHOOK_SECRET_LIMITER"): MiddlewareHandler<AppEnv> {
  return async function rateLimit(c, next) {
    const limiter = c.env[binding];
    // No binding (a config without limits): nothing to enforce.
    if (limiter && !(await limiter.limit({ key: c.get("keyId") })).success && !(binding === "CREATE_LIMITER" && (await isReplay(c)))) {
      throw new ApiError(429, "RATE_LIMITED", "Too many requests for this API key; slow down and retry.", {
        "Retry-After": String(PERIOD_SECONDS),
      });
    }
    await next();
  };
}
