/**
 * Creating a batch, for every surface that creates one (the primary API, and any compatible
 * surface): check the targets and the webhook, reserve the credits in the account, then create
 * the batch object under that hold. A surface turns its own request shape into a BatchRequest
 * and its own answer from the created batch; the rules and the money path stay here, once.
 */
import { sha256Hex } from "../account/keys";
import type { BatchView } from "../batch/views";
import { LIMITS } from "../domain/limits";
import { creditsPerItem, DEFAULT_OUTPUT, type OutputFormat } from "../domain/pricing";
import type { ScrapeOptions } from "../domain/scrape-options";
import { checkTarget } from "../domain/target-safety";
import type { Env } from "../env";
import { positiveInt } from "../lib/positive-int";
import { canonicalJson } from "./canonical-json";
import { ApiError } from "./errors";
import { accountObject, batchObject, unwrap } from "./objects";

/** A batch as every surface asks for it, after the surface's own validation. */
export interface BatchRequest {
  urls: string[];
  output?: OutputFormat;
  selectors?: Record<string, string> | null;
  maxConcurrency?: number;
  /** Unchecked: checked here (https, target safety). */
  webhookUrl?: string | null;
  /** How pages are fetched and built; checked by the surface (src/domain/scrape-options.ts). */
  scrapeOptions?: ScrapeOptions | null;
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
  checkTargetUrls(request.urls, allowLoopback);
  const webhookUrl = request.webhookUrl == null ? null : checkWebhookUrl(request.webhookUrl, allowLoopback);
  const output = request.output ?? DEFAULT_OUTPUT;
  const price = creditsPerItem(output);
  const total = request.urls.length;
  const maxConcurrency = request.maxConcurrency ?? LIMITS.defaultMaxConcurrency;

  const reservation = unwrap(
    await accountObject(env, accountId).reserveBatch({
      total,
      amount: total * price,
      wantedSlots: Math.min(total, maxConcurrency),
      maxActiveBatches: positiveInt(env.MAX_ACTIVE_BATCHES, LIMITS.maxActiveBatches),
      idempotencyKey: idempotency?.key ?? null,
      requestHash: idempotency === null ? null : await sha256Hex(canonicalJson(idempotency.request)),
    }),
  );
  return unwrap(
    await batchObject(env, reservation.batchId).create({
      batchId: reservation.batchId,
      accountId,
      holdKey: reservation.holdKey,
      urls: request.urls,
      output,
      selectors: request.selectors ?? null,
      maxConcurrency,
      creditsPerItem: price,
      slotsGranted: reservation.slotsGranted,
      webhookUrl,
      scrapeOptions: request.scrapeOptions ?? null,
    }),
  );
}

/**
 * Refuses, before anything is reserved, a target the executor would refuse before fetching it:
 * the same `checkTarget`. A name that resolves to a private address passes here and is stopped
 * at fetch time (docs/target-safety.md).
 */
function checkTargetUrls(urls: readonly string[], allowLoopback: boolean): void {
  urls.forEach((url, index) => {
    const target = checkTarget(url, { allowLoopback });
    if (!target.ok)
      throw new ApiError(400, "VALIDATION_ERROR", `urls[${index}]: ${url} can never be fetched: ${target.reason}`);
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
