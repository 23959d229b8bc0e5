/**
 * Rate limits, through Workers rate-limit bindings (per location, counted by the platform).
 * Over a limit: 429 RATE_LIMITED with Retry-After, in the surface's envelope.
 *
 * - Per API key id: creates, cancels, retries, live-view opens, reads
 *   and webhook secret rotations (`rateLimit`). Polls the batch object answers are limited
 *   there instead, per key and batch, in memory (src/batch/poll-budget.ts).
 * - Failed authentications, per client address and per key id (`AuthFailures`), so
 *   guessing keys, or replaying a revoked one, costs the caller more than it costs us.
 *
 * Every call of a binding's `limit()` counts one. The request limits want exactly that;
 * the failure limits must count failures only, so they are called after a failure, and
 * before any work only for an address or key id this isolate recently saw refused.
 * docs/abuse-limits.md lists every limit and what this design does not catch.
 */
import type { Context, MiddlewareHandler } from "hono";
import type { AppEnv, Env } from "../env";
import { ApiError } from "./errors";
import { accountObject } from "./objects";

/** The period every limiter binding counts over (wrangler.toml: simple.period). */
export const PERIOD_SECONDS = 60;

type RequestLimiter =
  | "CREATE_LIMITER"
  | "CANCEL_LIMITER"
  | "RETRY_LIMITER"
  | "LIVE_LIMITER"
  | "READ_LIMITER"
  | "WEBHOOK_SECRET_LIMITER";
type FailureLimiter = "FAILED_AUTH_IP_LIMITER" | "FAILED_AUTH_KEY_LIMITER";

function tooMany(message: string): ApiError {
  return new ApiError(429, "RATE_LIMITED", message, { "Retry-After": String(PERIOD_SECONDS) });
}

/**
 * A create whose Idempotency-Key the account already holds is a client retrying a request
 * that may have succeeded: it can only get the same batch back (or 422 for another body),
 * never a new one, so it is not told to slow down. Asked only when over the limit.
 */
async function isReplay(c: Context<AppEnv>): Promise<boolean> {
  const key = c.req.header("idempotency-key");
  if (!key) return false;
  return accountObject(c.env, c.get("accountId"))
    .holdsIdempotencyKey(key)
    .catch(() => false);
}

/**
 * Counts the request against `binding`, by key id. A request is counted by one limiter: the
 * first that runs (register the specific paths before a catch-all such as GET /api/*).
 */
export function rateLimit(binding: RequestLimiter, options: { exceptPolls?: boolean } = {}): MiddlewareHandler<AppEnv> {
  return async function rateLimit(c, next) {
    const limiter = c.env[binding];
    // No binding (a config without limits), or already counted by another: nothing to enforce.
    if (limiter && c.get("limitedBy") === undefined) {
      c.set("limitedBy", binding);
      const count = async () => {
        if (
          !(await limiter.limit({ key: c.get("keyId") })).success &&
          !(binding === "CREATE_LIMITER" && (await isReplay(c)))
        ) {
          throw tooMany("Too many requests for this API key; slow down and retry.");
        }
      };
      // A poll left to the batch object (requireApiKey's `batchRead`) is limited there, per key
      // and batch (src/batch/poll-budget.ts); it is counted here only if it falls back to the
      // account path (readBatch), so scanning batch ids stays limited per key.
      if (options.exceptPolls && c.get("keyClaim") !== undefined) c.set("countIfFallback", count);
      else await count();
    }
    await next();
  };
}

/**
 * Addresses and key ids a failure limiter refused, in this isolate, until when (ms). Only
 * these are checked before a request does any work; a flood that reaches another isolate
 * is caught there after its first failure. Bounded: the oldest entry goes first.
 */
const refusedLately = new Map<string, number>();
const MAX_REMEMBERED = 10_000;

function remember(entry: string, now: number): void {
  refusedLately.delete(entry);
  refusedLately.set(entry, now + PERIOD_SECONDS * 1000);
  if (refusedLately.size > MAX_REMEMBERED) refusedLately.delete(refusedLately.keys().next().value!);
}

const REFUSED: Record<FailureLimiter, string> = {
  FAILED_AUTH_IP_LIMITER: "Too many failed authentications from this address; retry later.",
  FAILED_AUTH_KEY_LIMITER: "Too many failed authentications with this API key; retry later.",
};

/** The caller's address as Cloudflare saw it; every request without one shares one bucket. */
export function clientAddress(c: Context<AppEnv>): string {
  return c.req.header("cf-connecting-ip") || "unknown";
}

/**
 * Failed authentications of one request: `guard` before the work, `refuse` on failure.
 * A key id is counted only once its MAC proved the key ours (a made-up key id is counted
 * by address only), so nobody can lock out a key they do not hold.
 */
export class AuthFailures {
  /** Limiters this request already counted once (a guard's call counts as its failure). */
  readonly #counted = new Set<FailureLimiter>();

  constructor(
    private readonly env: Env,
    private readonly address: string,
  ) {}

  /** 429 if `key` was refused lately in this isolate and its limiter still says no. */
  private async guard(binding: FailureLimiter, key: string): Promise<void> {
    const limiter = this.env[binding];
    const entry = `${binding}:${key}`;
    const until = refusedLately.get(entry);
    if (!limiter || until === undefined) return;
    const now = Date.now();
    if (until <= now) {
      refusedLately.delete(entry);
      return;
    }
    this.#counted.add(binding);
    if ((await limiter.limit({ key })).success) refusedLately.delete(entry);
    else {
      remember(entry, now);
      throw tooMany(REFUSED[binding]);
    }
  }

  guardAddress(): Promise<void> {
    return this.guard("FAILED_AUTH_IP_LIMITER", this.address);
  }

  /** Only for a key whose MAC is right: a made-up key id is never looked up or counted. */
  guardKey(keyId: string): Promise<void> {
    return this.guard("FAILED_AUTH_KEY_LIMITER", keyId);
  }

  /** Counts the failure (by address, and by key id when the key is ours) and throws: 429 once over a limit, else `error`. */
  async refuse(error: ApiError, keyId?: string): Promise<never> {
    const counts: [FailureLimiter, string][] = [["FAILED_AUTH_IP_LIMITER", this.address]];
    if (keyId !== undefined) counts.push(["FAILED_AUTH_KEY_LIMITER", keyId]);
    let over: FailureLimiter | undefined;
    for (const [binding, key] of counts) {
      const limiter = this.env[binding];
      if (!limiter || this.#counted.has(binding)) continue;
      if (!(await limiter.limit({ key })).success) {
        remember(`${binding}:${key}`, Date.now());
        over ??= binding;
      }
    }
    throw over ? tooMany(REFUSED[over]) : error;
  }
}
