/** Executor settings from vars, with the defaults. */
import type { Env } from "../env";
import { DEFAULT_FETCH_POLICY, type FetchPolicy } from "./fetch-page";
import { positiveInt } from "../lib/positive-int";

export function fetchPolicy(env: Env): FetchPolicy {
  return {
    ...DEFAULT_FETCH_POLICY,
    timeoutMs: positiveInt(env.FETCH_TIMEOUT_MS, DEFAULT_FETCH_POLICY.timeoutMs),
    maxBytes: positiveInt(env.FETCH_MAX_BYTES, DEFAULT_FETCH_POLICY.maxBytes),
    allowLoopback: env.ALLOW_LOOPBACK_TARGETS === "true",
    // A header value: one printable line, or the default.
    userAgent: env.FETCH_USER_AGENT && /^[\x20-\x7e]{1,256}$/.test(env.FETCH_USER_AGENT) ? env.FETCH_USER_AGENT : DEFAULT_FETCH_POLICY.userAgent,
  };
}
