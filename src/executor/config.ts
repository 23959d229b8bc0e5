/** Executor settings from vars, with the defaults. */
import type { ScrapeOptions } from "../domain/scrape-options";
import type { Env } from "../env";
import { DEFAULT_FETCH_POLICY, type FetchPolicy } from "./fetch-page";
import { positiveInt } from "../lib/positive-int";
import { DEFAULT_EXTRACTION_LIMITS, type ExtractionLimits } from "./budget";

export function fetchPolicy(env: Env): FetchPolicy {
  return {
    ...DEFAULT_FETCH_POLICY,
    timeoutMs: positiveInt(env.FETCH_TIMEOUT_MS, DEFAULT_FETCH_POLICY.timeoutMs),
    maxBytes: positiveInt(env.FETCH_MAX_BYTES, DEFAULT_FETCH_POLICY.maxBytes),
    allowLoopback: env.ALLOW_LOOPBACK_TARGETS === "true",
    // A header value: one printable line, or the default.
    userAgent:
      env.FETCH_USER_AGENT && /^[\x20-\x7e]{1,256}$/.test(env.FETCH_USER_AGENT)
        ? env.FETCH_USER_AGENT
        : DEFAULT_FETCH_POLICY.userAgent,
  };
}

/** The deployment's policy narrowed by a batch's options: its headers, and a deadline never past ours. */
export function fetchPolicyFor(env: Env, options: ScrapeOptions | null): FetchPolicy {
  const policy = fetchPolicy(env);
  return {
    ...policy,
    timeoutMs: Math.min(policy.timeoutMs, options?.timeoutMs ?? policy.timeoutMs),
    ...(options?.headers ? { headers: options.headers } : {}),
  };
}

export function extractionLimits(env: Env): ExtractionLimits {
  const d = DEFAULT_EXTRACTION_LIMITS;
  return {
    maxElements: positiveInt(env.EXTRACT_MAX_ELEMENTS, d.maxElements),
    maxTextBytes: positiveInt(env.EXTRACT_MAX_TEXT_BYTES, d.maxTextBytes),
    maxOutputBytes: positiveInt(env.EXTRACT_MAX_OUTPUT_BYTES, d.maxOutputBytes),
    maxSelectorBytes: positiveInt(env.EXTRACT_MAX_SELECTOR_BYTES, d.maxSelectorBytes),
    timeoutMs: positiveInt(env.EXTRACT_TIMEOUT_MS, d.timeoutMs),
  };
}
