/**
 * How long an item waits before its next attempt after a transient failure. Pure: the
 * random source is a parameter, so tests can pin the jitter.
 */

/** The backoff grows to this and no further (before jitter). */
export const MAX_BACKOFF_MS = 60_000;

/**
 * base, 2 x base, 4 x base … (capped at MAX_BACKOFF_MS), times a jitter in [0.75, 1.25)
 * so items that failed together do not come back together; at least what Retry-After asked.
 */
export function retryDelayMs(
  attempts: number,
  retryAfterSeconds: number,
  baseMs: number,
  random: () => number = Math.random,
): number {
  const backoff = Math.min(baseMs * 2 ** (attempts - 1), MAX_BACKOFF_MS) * (0.75 + random() / 2);
  return Math.round(Math.max(backoff, retryAfterSeconds * 1000));
}
