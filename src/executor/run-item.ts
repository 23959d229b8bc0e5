/**
 * Runs one leased item: fetch the page, extract what the batch asked for, store the result
 * in R2. Never throws: every failure comes back classified as retryable or not.
 *
 * Extraction works under a WorkBudget (src/executor/budget.ts): a page that passes one of
 * its limits fails with EXTRACTION_LIMIT, not retryable (it would fail the same way again);
 * the batch object charges it (docs/extraction-limits.md).
 *
 * The batch's options (src/batch/options.ts): its sealed cookies are opened here, just
 * before the fetch; main content only drops the page's boilerplate before extraction; AI
 * extraction sends the page as Markdown to the model (src/executor/ai-extract.ts), and an AI
 * item's result is always JSON: `{ url, finalUrl, statusCode, content, ai }`, or for a
 * document (Firecrawl's json format) the document with the answer at `json`.
 */
import { EXTRACTION_LIMIT } from "../domain/charging";
import { type ResultMeta, resultKey, type StartResult } from "../domain/executor-contract";
import type { Env } from "../env";
import { openCookies, usableCookieSecret } from "../lib/sealed-cookies";
import { extractWithAi } from "./ai-extract";
import { limitErrorOf, WorkBudget } from "./budget";
import { buildDocument } from "./build-document";
import { aiSettings, extractionLimits, fetchPolicyFor } from "./config";
import { decodeBody } from "./decode";
import { extractJson } from "./extract-json";
import { toMarkdown } from "./extract-markdown";
import { fetchPage } from "./fetch-page";
import { mainContentHtml } from "./main-content";

type Lease = Extract<StartResult, { action: "run" }>;

/** Results up to this size are also shown inline in GET /api/batch/scrape/:id. */
export const INLINE_RESULT_MAX_CHARS = 8 * 1024;

export type ItemOutcome =
  | { ok: true; inline: unknown; meta: ResultMeta }
  | {
      ok: false;
      retryable: boolean;
      retryAfterSeconds?: number;
      error: { code: string; message: string };
      meta: ResultMeta;
    };

export async function runItem(lease: Lease, env: Env, fetcher: typeof fetch = fetch): Promise<ItemOutcome> {
  const cookies = await leaseCookies(lease, env);
  if (cookies === undefined) {
    return {
      ok: false,
      retryable: false,
      error: {
        code: "COOKIES_UNREADABLE",
        message:
          "The batch's sealed cookies cannot be opened (COOKIE_SECRET changed or is missing); nothing was fetched.",
      },
      meta: {},
    };
  }
  const page = await fetchPage(lease.url, fetchPolicyFor(env, lease.options ?? null), fetcher, cookies);
  if (!page.ok) {
    return {
      ok: false,
      retryable: page.retryable,
      retryAfterSeconds: page.retryAfterSeconds,
      error: { code: page.code, message: page.message },
      meta: { statusCode: page.statusCode ?? null, finalUrl: page.finalUrl ?? null, durationMs: page.durationMs },
    };
  }
  const meta: ResultMeta = { statusCode: page.statusCode, finalUrl: page.finalUrl, durationMs: page.durationMs };

  let content: string;
  let contentType: string;
  let inline: unknown;
  // Made after the fetch: its time limit counts extraction only.
  const work = new WorkBudget(extractionLimits(env));
  try {
    const fetched = decodeBody(page.body, page.contentType);
    const html = lease.mainContentOnly ? await mainContentHtml(fetched, work) : fetched;
    if (lease.ai && lease.output !== "document") {
      const markdown = await toMarkdown(html, page.finalUrl, work);
      const answer = await extractWithAi(aiSettings(env), lease.ai, markdown, lease.output);
      if (!answer.ok) {
        const { retryable, code, message } = answer;
        return { ok: false, retryable, error: { code, message }, meta };
      }
      const doc = {
        url: lease.url,
        finalUrl: page.finalUrl,
        statusCode: page.statusCode,
        content: answer.content,
        ai: { model: answer.model, inputChars: answer.inputChars, inputTruncated: answer.inputTruncated },
      };
      content = JSON.stringify(doc);
      contentType = "application/json";
      inline = content.length <= INLINE_RESULT_MAX_CHARS ? doc : null;
    } else if (lease.output === "json") {
      const doc = await extractJson(
        html,
        { url: lease.url, finalUrl: page.finalUrl, statusCode: page.statusCode },
        lease.selectors ?? undefined,
        work,
        { mainOnly: lease.mainContentOnly === true },
      );
      content = JSON.stringify(doc);
      contentType = "application/json";
      inline = content.length <= INLINE_RESULT_MAX_CHARS ? doc : null;
    } else if (lease.output === "document") {
      const pageInfo = { url: lease.url, finalUrl: page.finalUrl, statusCode: page.statusCode };
      const doc = await buildDocument(html, pageInfo, lease.options ?? null, work, fetched);
      if (lease.ai) {
        // Firecrawl's json format: the model's answer (JSON mode) at the document's `json`.
        const markdown = await toMarkdown(html, page.finalUrl, work);
        const answer = await extractWithAi(aiSettings(env), lease.ai, markdown, "json");
        if (!answer.ok) {
          const { retryable, code, message } = answer;
          return { ok: false, retryable, error: { code, message }, meta };
        }
        doc.json = answer.content;
      }
      content = JSON.stringify(doc);
      contentType = "application/json";
      inline = content.length <= INLINE_RESULT_MAX_CHARS ? doc : null;
    } else {
      content = await toMarkdown(html, page.finalUrl, work);
      contentType = "text/markdown; charset=utf-8";
      inline = content.length <= INLINE_RESULT_MAX_CHARS ? content : null;
    }
    work.checkResult(content);
  } catch (err) {
    const limit = limitErrorOf(err, work);
    if (limit) return { ok: false, retryable: false, error: { code: EXTRACTION_LIMIT, message: limit.message }, meta };
    return {
      ok: false,
      retryable: false,
      error: { code: "EXTRACTION_FAILED", message: String(err instanceof Error ? err.message : err) },
      meta,
    };
  }

  const key = resultKey(lease.batchId, lease.itemId);
  try {
    await env.RESULTS.put(key, content, {
      httpMetadata: { contentType },
      customMetadata: { batchId: lease.batchId, itemId: lease.itemId, attempt: String(lease.attempt) },
    });
  } catch (err) {
    return {
      ok: false,
      retryable: true,
      error: { code: "RESULT_STORE_FAILED", message: String(err instanceof Error ? err.message : err) },
      meta,
    };
  }
  return { ok: true, inline, meta: { ...meta, resultKey: key } };
}

/**
 * The lease's cookies in the clear: null when the batch has none, undefined when they do
 * not open (the secret changed or is gone): the item must not run without them.
 */
async function leaseCookies(lease: Lease, env: Env): Promise<string | null | undefined> {
  if (!lease.cookies) return null;
  const secret = usableCookieSecret(env.COOKIE_SECRET);
  if (secret === null) return undefined;
  return (await openCookies(lease.cookies, secret, lease.batchId)) ?? undefined;
}
