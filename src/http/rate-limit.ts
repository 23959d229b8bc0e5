/**
 * Per-key rate limits on the calls that cost the most (creating and cancelling batches),
 * through Workers rate-limit bindings. Over the limit: 429 with Retry-After.
 */
import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../env";
import { ApiError } from "./errors";

/** The period the limiter bindings count over (wrangler.toml: simple.period). */
const PERIOD_SECONDS = 60;

export function rateLimit(binding: "CREATE_LIMITER" | "CANCEL_LIMITER"): MiddlewareHandler<AppEnv> {
  return async function rateLimit(c, next) {
    const limiter = c.env[binding];
    // No binding (a config without limits): nothing to enforce.
    if (limiter && !(await limiter.limit({ key: c.get("keyId") })).success) {
      throw new ApiError(429, "RATE_LIMITED", "Too many requests for this API key; slow down and retry.", {
        "Retry-After": String(PERIOD_SECONDS),
      });
    }
    await next();
  };
}
