/**
 * A token bucket, the arithmetic only: the caller keeps the state and passes the time. A
 * bucket holds at most `burst` tokens and gains `perMinute` a minute; a request takes one.
 */
export interface BucketRate {
  perMinute: number;
  burst: number;
}

/** Tokens left (fractional while refilling) as of `at` (epoch ms). */
export interface Bucket {
  tokens: number;
  at: number;
}

export type Taken = { ok: true; bucket: Bucket } | { ok: false; bucket: Bucket; retryAfterMs: number };

/** A new bucket starts full. A clock that went back refills nothing (and takes nothing away). */
export function takeToken(bucket: Bucket | undefined, rate: BucketRate, now: number): Taken {
  const perMs = rate.perMinute / 60_000;
  const tokens = bucket ? Math.min(rate.burst, bucket.tokens + Math.max(0, now - bucket.at) * perMs) : rate.burst;
  const at = bucket ? Math.max(now, bucket.at) : now;
  if (tokens >= 1) return { ok: true, bucket: { tokens: tokens - 1, at } };
  return { ok: false, bucket: { tokens, at }, retryAfterMs: (1 - tokens) / perMs };
}

/** `Retry-After` in whole seconds: rounded up, at least 1 (0 would invite an immediate retry). */
export function retryAfterSeconds(retryAfterMs: number): number {
  return Math.max(1, Math.ceil(retryAfterMs / 1000));
}
