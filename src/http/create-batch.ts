/**
 * Creating a batch, for every surface that creates one (the primary API, and any compatible
 * surface): check the targets and the webhook, reserve the credits in the account, then create
 * the batch object under that hold. A surface turns its own request shape into a BatchRequest
 * and its own answer from the created batch; the rules and the money path stay here, once.
 */
import { sha256Hex } from "../account/keys";
import type { BatchView } from "../batch/views";
import { type ItemInput, labelItems } from "../domain/item-inputs";
import { aiAvailable, MAX_PROMPT_CHARS, SCHEMA_ONLY_PROMPT } from "../domain/ai-extraction";
import { cookieHeader, cookiesProblem } from "../domain/cookies";
import type { AiExtraction } from "../domain/executor-contract";
import { schemaProblem } from "../domain/json-schema";
import { LIMITS } from "../domain/limits";
import { creditsPerItem, DEFAULT_OUTPUT, type OutputFormat } from "../domain/pricing";
import type { ScrapeOptions } from "../domain/scrape-options";
import { checkTarget } from "../domain/target-safety";
import type { Env } from "../env";
import { positiveInt } from "../lib/positive-int";
import { cookiesDigest, sealCookies, usableCookieSecret } from "../lib/sealed-cookies";
import { canonicalJson } from "./canonical-json";
import { ApiError } from "./errors";
import { accountObject, batchObject, unwrap } from "./objects";

/** A batch as every surface asks for it, after the surface's own validation. */
export interface BatchRequest {
  /** A URL, or a URL with the caller's own id and metadata (src/domain/item-inputs.ts). */
  urls: readonly (string | ItemInput)[];
  output?: OutputFormat;
  selectors?: Record<string, string> | null;
  maxConcurrency?: number;
  /** Unchecked: checked here (https, target safety). */
  webhookUrl?: string | null;
  /** How pages are fetched and built; checked by the surface (src/domain/scrape-options.ts). */
  scrapeOptions?: ScrapeOptions | null;
  /**
   * Extract the main content only: navigation, site headers, footers, asides, forms, scripts
   * and cookie banners are dropped before extraction (src/executor/main-content.ts). Default false.
   */
  mainContentOnly?: boolean;
  /**
   * AI extraction through Workers AI (docs/ai-extraction.md): `prompt` (non-empty, at most
   * MAX_PROMPT_CHARS) and the JSON Schema the answer must fit (the subset of
   * src/domain/json-schema.ts; json or document output only). Null or absent: none. Refused (400 naming
   * `prompt`, or `schema` when only a schema is given) where AI is off, before anything is reserved.
   */
  ai?: AiExtraction | null;
  /**
   * A Cookie header value ("a=1; b=2"), sent with this batch's fetches to each URL's own
   * origin only. Checked here; held sealed in the batch object until the batch ends, then
   * erased (src/lib/sealed-cookies.ts). Never echoed, logged or sent elsewhere.
   */
  cookies?: string | null;
}

/** Why a create asking for AI extraction is refused where AI is off; every surface says the same. */
export const AI_OFF =
  'AI extraction is turned off on this deployment. An operator turns it on with AI_ENABLED = "true" and a Workers AI binding named AI (docs/ai-extraction.md)';

/** A create field this deployment does not offer: 400, so clients fix the request rather than retry it. */
export function optionUnavailable(field: string, why: string): ApiError {
  return new ApiError(400, "OPTION_UNAVAILABLE", `${field}: ${why}`);
}

export interface Idempotency {
  key: string;
  /** Whatever identifies the request's content: the same key with other content is refused. */
  request: unknown;
}

export function maxUrls(env: { MAX_URLS_PER_BATCH?: string }): number {
  return positiveInt(env.MAX_URLS_PER_BATCH, LIMITS.maxUrlsPerBatch);
}

/** Reserves the credits and creates the batch; throws an ApiError when anything is refused. */
export async function createBatch(
  env: Env,
  accountId: string,
  request: BatchRequest,
  idempotency: Idempotency | null,
): Promise<{ batch: BatchView; replay: boolean }> {
  const allowLoopback = env.ALLOW_LOOPBACK_TARGETS === "true";
  const inputs = request.urls.map((entry) => (typeof entry === "string" ? { url: entry } : entry));
  const urls = inputs.map((input) => input.url);
  const labelled = labelItems(inputs);
  if (!labelled.ok) throw new ApiError(400, "VALIDATION_ERROR", labelled.message);
  checkTargetUrls(request.urls, allowLoopback);
  const webhookUrl = request.webhookUrl == null ? null : checkWebhookUrl(request.webhookUrl, allowLoopback);
  const output = request.output ?? DEFAULT_OUTPUT;
  const ai = checkAi(env, request.ai ?? null, output);
  const cookies = checkCookies(env, request.cookies ?? null);
  const price = creditsPerItem(output, { ai: ai !== null });
  const total = urls.length;
  const maxConcurrency = request.maxConcurrency ?? LIMITS.defaultMaxConcurrency;

  const reservation = unwrap(
    await accountObject(env, accountId).reserveBatch({
      total,
      output,
      amount: total * price,
      wantedSlots: Math.min(total, maxConcurrency),
      maxActiveBatches: positiveInt(env.MAX_ACTIVE_BATCHES, LIMITS.maxActiveBatches),
      idempotencyKey: idempotency?.key ?? null,
      requestHash: idempotency === null ? null : await requestHash(idempotency.request, cookies),
    }),
  );
  return unwrap(
    await batchObject(env, reservation.batchId).create({
      batchId: reservation.batchId,
      accountId,
      holdKey: reservation.holdKey,
      urls,
      labels: labelled.labels,
      output,
      selectors: request.selectors ?? null,
      maxConcurrency,
      creditsPerItem: price,
      slotsGranted: reservation.slotsGranted,
      webhookUrl,
      mainContentOnly: request.mainContentOnly === true,
      ai,
      cookies: cookies === null ? null : await sealCookies(cookies.value, cookies.secret, reservation.batchId),
      scrapeOptions: request.scrapeOptions ?? null,
    }),
  );
}

/**
 * The idempotency fingerprint. A surface passes its request without the cookies; they count
 * through a keyed digest, so the same key with other cookies is refused like any other change,
 * and nothing stored could give them back.
 */
async function requestHash(request: unknown, cookies: { value: string; secret: string } | null): Promise<string> {
  if (cookies === null) return sha256Hex(canonicalJson(request));
  return sha256Hex(canonicalJson({ request, cookies: await cookiesDigest(cookies.value, cookies.secret) }));
}

/** Refuses AI extraction this deployment cannot run, or asks for in a way it cannot honour. */
function checkAi(env: Env, ai: AiExtraction | null, output: OutputFormat): AiExtraction | null {
  if (ai === null) return null;
  const field = ai.prompt === SCHEMA_ONLY_PROMPT ? "schema" : "prompt";
  if (!aiAvailable(env)) {
    throw optionUnavailable(field, `${AI_OFF}; until then, send the batch without prompt and schema.`);
  }
  if (ai.prompt.length > MAX_PROMPT_CHARS)
    throw new ApiError(400, "VALIDATION_ERROR", `prompt: must be at most ${MAX_PROMPT_CHARS} characters`);
  if (ai.schema !== null) {
    const problem = schemaProblem(ai.schema);
    if (problem) throw new ApiError(400, "VALIDATION_ERROR", `schema: ${problem}`);
    // A document (Firecrawl's surface) carries the answer at `json`, so it is JSON there too.
    if (output !== "json" && output !== "document")
      throw new ApiError(400, "VALIDATION_ERROR", 'schema: needs output "json" (the answer is a JSON document)');
  }
  return ai;
}

/** The cookies as they will be sent, and the secret to seal them with; refuses what cannot be sent or kept safe. */
function checkCookies(env: Env, cookies: string | null): { value: string; secret: string } | null {
  if (cookies === null || cookies.trim() === "") return null;
  const problem = cookiesProblem(cookies);
  if (problem) throw new ApiError(400, "VALIDATION_ERROR", `cookies: ${problem}`);
  const secret = usableCookieSecret(env.COOKIE_SECRET);
  if (secret === null) {
    throw optionUnavailable(
      "cookies",
      "this deployment has no COOKIE_SECRET to keep cookies sealed until the batch ends, so it does not accept them (docs/deploy.md).",
    );
  }
  return { value: cookieHeader(cookies), secret };
}

/**
 * Refuses, before anything is reserved, a target the executor would refuse before fetching it:
 * the same `checkTarget`. A name that resolves to a private address passes here and is stopped
 * at fetch time (docs/target-safety.md).
 */
function checkTargetUrls(entries: BatchRequest["urls"], allowLoopback: boolean): void {
  entries.forEach((entry, index) => {
    const url = typeof entry === "string" ? entry : entry.url;
    const field = typeof entry === "string" ? `urls[${index}]` : `urls[${index}].url`;
    const target = checkTarget(url, { allowLoopback });
    if (!target.ok)
      throw new ApiError(400, "VALIDATION_ERROR", `${field}: ${url} can never be fetched: ${target.reason}`);
  });
}

/** https only, and the same target-safety rules as the executor (loopback http only in local development). */
function checkWebhookUrl(url: string, allowLoopback: boolean): string {
  const target = checkTarget(url, { allowLoopback });
  if (!target.ok) throw new ApiError(400, "VALIDATION_ERROR", `webhookUrl: ${target.reason}`);
  const loopback =
    ["127.0.0.1", "localhost", "[::1]"].includes(target.url.hostname) || target.url.hostname.startsWith("127.");
  if (target.url.protocol !== "https:" && !(allowLoopback && loopback)) {
    throw new ApiError(400, "VALIDATION_ERROR", "webhookUrl: must use https");
  }
  return target.url.href;
}
