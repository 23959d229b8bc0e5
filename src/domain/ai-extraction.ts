/**
 * AI extraction's rules, shared by the create path and the executor (docs/ai-extraction.md).
 * Workers AI runs it; this deployment turns it on with AI_ENABLED = "true" and an `[ai]`
 * binding named AI, both only in the deployed environments (wrangler.toml).
 */
import type { AiExtraction } from "./executor-contract";

/** Characters of `prompt` a batch may send. */
export const MAX_PROMPT_CHARS = 4000;

/** JSON mode capable, 24k-token context (developers.cloudflare.com/workers-ai/models/). AI_MODEL replaces it. */
export const DEFAULT_AI_MODEL = "@cf/meta/llama-3.3-70b-instruct-fp8-fast";
/** Characters of page text (Markdown) sent to the model: about 8k tokens, well inside the context. AI_MAX_INPUT_CHARS. */
export const DEFAULT_AI_MAX_INPUT_CHARS = 32_000;
/** Tokens the model may answer with (Workers AI's own default is 256, too few for a list). AI_MAX_OUTPUT_TOKENS. */
export const DEFAULT_AI_MAX_OUTPUT_TOKENS = 2048;

/** The instruction when a batch gives a schema and no prompt. */
export const SCHEMA_ONLY_PROMPT = "Extract the data that the JSON Schema describes from this page.";

/** Item error codes of AI extraction. */
export const AI_ERRORS = {
  /** The model answered, but not with JSON that fits the schema: not charged, not retried by itself. */
  outputInvalid: "AI_OUTPUT_INVALID",
  /** The model call failed (capacity, timeout, the model refused): not charged, retried while attempts last. */
  failed: "AI_FAILED",
  /** AI was turned off after the batch was created: not charged. */
  unavailable: "AI_UNAVAILABLE",
} as const;

/**
 * What a create asks of AI: nothing when neither a prompt (blank counts as none, as typed
 * Spidra clients must send one) nor a schema is given.
 */
export function requestedAi(prompt: string | undefined, schema: object | undefined): AiExtraction | null {
  const text = prompt?.trim() ?? "";
  if (text === "" && schema === undefined) return null;
  return { prompt: text === "" ? SCHEMA_ONLY_PROMPT : text, schema: schema ?? null };
}

/** AI extraction is on only where the deployment both enables it (AI_ENABLED="true") and binds AI. */
export function aiAvailable(env: { AI?: unknown; AI_ENABLED?: string }): boolean {
  return env.AI_ENABLED === "true" && Boolean(env.AI);
}
