/**
 * Polls of this batch, limited per API key id, in this object's memory: a poll answered by
 * the batch object (src/http/batch-reads.ts) costs no rate-limit binding call, and the limit
 * is per key *and batch*, so an account polling 1,000 batches is limited by none of them
 * for polling each one at its own pace. The READ_LIMITER binding still counts the polls that
 * fall back to the account (unknown or foreign batch ids) or that the account answers (no copy
 * kept here, past MAX_KEY_COPIES), so scanning ids stays limited.
 *
 * Memory only, on purpose: a bucket is a few numbers, lost when the object is evicted or
 * restarts (a key then starts again with a full burst; at worst twice the burst at once).
 * Bounded: past MAX_BUCKETS keys, the one used longest ago is forgotten (it, too, starts
 * full when it comes back). docs/abuse-limits.md has the numbers.
 */
import { type Failure, fail } from "../domain/errors";
import { type Bucket, type BucketRate, retryAfterSeconds, takeToken } from "../domain/token-bucket";
import type { Env } from "../env";
import { positiveInt } from "../lib/positive-int";

/** Default POLL_LIMIT_PER_MINUTE: 10 polls a second per key and batch, sustained. */
export const DEFAULT_POLLS_PER_MINUTE = 600;
/** Polls in a row before the rate applies (at least a second's worth when the rate is higher). */
export const POLL_BURST = 20;
/** Keys whose buckets one batch object remembers. */
export const MAX_BUCKETS = 1_000;

/** A poll over the budget: 429 RATE_LIMITED with `Retry-After` (src/http/objects.ts `unwrap`). */
export type PollLimited = Failure & { code: "RATE_LIMITED"; retryAfterSeconds: number };

/**
 * A poll this object answered without a copy of the key (the account lends no more past
 * MAX_KEY_COPIES, so it was asked for this very read) carries `accountAnswered`: it is not
 * budgeted here, and the Worker's READ_LIMITER counts it per key, as it counted every read
 * that asked the account (src/http/batch-reads.ts).
 */
export function accountAnswered<R extends object>(answer: R): R & { accountAnswered: true } {
  return { ...answer, accountAnswered: true };
}

export function pollRate(env: Pick<Env, "POLL_LIMIT_PER_MINUTE">): BucketRate {
  const perMinute = positiveInt(env.POLL_LIMIT_PER_MINUTE, DEFAULT_POLLS_PER_MINUTE);
  return { perMinute, burst: Math.max(POLL_BURST, Math.ceil(perMinute / 60)) };
}

export class PollBudget {
  /** Insertion order is use order: a key taken from is moved to the end, the first is the oldest. */
  readonly #buckets = new Map<string, Bucket>();

  constructor(
    readonly rate: BucketRate,
    private readonly now: () => number = Date.now,
    private readonly maxBuckets = MAX_BUCKETS,
  ) {}

  /** One poll by `keyId`: true, or the refusal naming when the next token comes. */
  take(keyId: string): true | PollLimited {
    const taken = takeToken(this.#buckets.get(keyId), this.rate, this.now());
    this.#buckets.delete(keyId);
    this.#buckets.set(keyId, taken.bucket);
    if (this.#buckets.size > this.maxBuckets) this.#buckets.delete(this.#buckets.keys().next().value!);
    if (taken.ok) return true;
    const seconds = retryAfterSeconds(taken.retryAfterMs);
    const failure = fail("RATE_LIMITED", `Too many reads of this batch with this API key; retry in ${seconds} s.`);
    return { ...failure, code: "RATE_LIMITED", retryAfterSeconds: seconds };
  }

  /** Keys remembered now (for tests of the bound). */
  get size(): number {
    return this.#buckets.size;
  }
}
