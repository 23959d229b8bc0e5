/** Executor settings from vars, with the defaults. */
import {
  aiAvailable,
  DEFAULT_AI_MAX_INPUT_CHARS,
  DEFAULT_AI_MAX_OUTPUT_TOKENS,
  DEFAULT_AI_MODEL,
} from "../domain/ai-extraction";
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

/** How AI extraction runs here; `binding` is null when AI is off (AI_ENABLED not "true", or no AI binding). */
export interface AiSettings {
  binding: Pick<Ai, "run"> | null;
  model: string;
  maxInputChars: number;
  maxOutputTokens: number;
}

/** The env fields AI extraction reads, so the create path can ask without a whole Env. */
export type AiEnv = Pick<Env, "AI" | "AI_ENABLED" | "AI_MODEL" | "AI_MAX_INPUT_CHARS" | "AI_MAX_OUTPUT_TOKENS">;

export function aiSettings(env: AiEnv): AiSettings {
  const model = env.AI_MODEL?.trim();
  return {
    binding: aiAvailable(env) && env.AI ? env.AI : null,
    model: model ? model : DEFAULT_AI_MODEL,
    maxInputChars: positiveInt(env.AI_MAX_INPUT_CHARS, DEFAULT_AI_MAX_INPUT_CHARS),
    maxOutputTokens: positiveInt(env.AI_MAX_OUTPUT_TOKENS, DEFAULT_AI_MAX_OUTPUT_TOKENS),
  };
}
