/**
 * A Firecrawl batch scrape request as our BatchRequest: the same batch, on the one create
 * path (src/http/create-batch.ts). Every option is honoured or refused with a 400 naming it;
 * informational fields (`origin`, `integration`) change nothing and are not stored.
 */
import { checkTarget } from "../../domain/target-safety";
import {
  type DocumentFormat,
  DOCUMENT_FORMATS,
  headerProblem,
  SCRAPE_LIMITS,
  type ScrapeOptions,
} from "../../domain/scrape-options";
import { validateSelector } from "../../lib/css-selector";
import { requestedAi } from "../../domain/ai-extraction";
import type { AiExtraction } from "../../domain/executor-contract";
import { AI_OFF, type BatchRequest, optionUnavailable } from "../create-batch";
import { ApiError } from "../errors";
import { TargetUrlSchema } from "../schemas";
import type { FirecrawlCreateInput } from "./schemas";

/** Options Firecrawl has that we honour only at one value (the one that is our behaviour). */
const ONLY_AT: Record<string, { accepts: (value: unknown) => boolean; why: string }> = {
  waitFor: { accepts: (v) => v === 0, why: "pages are fetched without a browser, so there is nothing to wait for" },
  mobile: { accepts: (v) => v === false, why: "there is no mobile emulation" },
  skipTlsVerification: { accepts: (v) => v === false, why: "TLS certificates are always verified" },
  parsers: { accepts: (v) => Array.isArray(v) && v.length === 0, why: "PDFs and other documents are not parsed" },
  actions: { accepts: (v) => Array.isArray(v) && v.length === 0, why: "pages are fetched without a browser" },
  location: { accepts: () => false, why: "requests do not go out through other countries" },
  removeBase64Images: { accepts: () => false, why: "the html format keeps images as the page has them" },
  blockAds: { accepts: (v) => v === false, why: "pages are fetched without their subresources; nothing is filtered" },
  proxy: { accepts: () => false, why: "there are no proxies" },
  minAge: { accepts: () => false, why: "there is no cache of earlier scrapes" },
  storeInCache: { accepts: (v) => v === false, why: "there is no shared cache" },
  fastMode: { accepts: (v) => v === false, why: "there is one mode" },
  useMock: { accepts: () => false, why: "there are no mocks" },
  lockdown: { accepts: (v) => v === false, why: "there is no lockdown mode" },
  redactPII: { accepts: (v) => v === false, why: "there is no PII redaction" },
  threatProtection: { accepts: () => false, why: "there is no threat-protection policy to override" },
  auditMetadata: { accepts: () => false, why: "there is no audit log for it" },
  profile: { accepts: () => false, why: "there are no browser profiles" },
  zeroDataRetention: { accepts: (v) => v === false, why: "results are kept for the retention period (RETENTION_DAYS)" },
  appendToId: { accepts: () => false, why: "a batch's URLs are fixed when it is created" },
};

/** Firecrawl formats we know but do not build. */
const OTHER_FORMATS = new Set([
  "summary",
  "screenshot",
  "changeTracking",
  "images",
  "branding",
  "attributes",
  "question",
  "highlights",
  "query",
  "audio",
  "video",
  "product",
  "menu",
]);

const refuse = (field: string, message: string): never => {
  throw new ApiError(400, "VALIDATION_ERROR", `${field}: ${message}`);
};

export interface MappedRequest {
  request: BatchRequest;
  /** With ignoreInvalidURLs (Firecrawl's default): the URLs left out. */
  invalidURLs: string[] | undefined;
}

export function toBatchRequest(body: FirecrawlCreateInput, allowLoopback: boolean, aiOn: boolean): MappedRequest {
  for (const [name, rule] of Object.entries(ONLY_AT)) {
    const value = (body as Record<string, unknown>)[name];
    if (value !== undefined && !rule.accepts(value))
      refuse(name, `${JSON.stringify(value)?.slice(0, 80)} is not available on this deployment: ${rule.why}.`);
  }
  const formats = documentFormats(body);
  const ai = aiAndMainContent(body, aiOn);
  const scrapeOptions: ScrapeOptions = { formats };
  if (body.includeTags?.length) scrapeOptions.includeTags = selectors("includeTags", body.includeTags);
  if (body.excludeTags?.length) scrapeOptions.excludeTags = selectors("excludeTags", body.excludeTags);
  if (body.headers && Object.keys(body.headers).length > 0) scrapeOptions.headers = requestHeaders(body.headers);
  if (body.timeout !== undefined) scrapeOptions.timeoutMs = body.timeout;
  const { urls, invalidURLs } = targetUrls(body.urls, body.ignoreInvalidURLs ?? true, allowLoopback);
  return {
    request: {
      urls,
      output: "document",
      selectors: null,
      maxConcurrency: body.maxConcurrency,
      webhookUrl: webhookUrl(body.webhook),
      scrapeOptions,
      ...ai,
    },
    invalidURLs,
  };
}

/**
 * Firecrawl's `{ type: "json", prompt?, schema? }` format is our AI extraction (the answer lands
 * at the document's `json`), checked again by createBatch's checkAi; here it is refused where AI
 * is off, naming the format entry, with the same words. `onlyMainContent` is our main-content
 * extraction, on unless false is sent: Firecrawl's documented default.
 */
function aiAndMainContent(body: FirecrawlCreateInput, aiOn: boolean): Pick<BatchRequest, "ai" | "mainContentOnly"> {
  let ai: AiExtraction | null = null;
  body.formats?.forEach((entry, i) => {
    const type = typeof entry === "string" ? entry : entry.type;
    if (type !== "json") return;
    const field = `formats[${i}]`;
    if (!aiOn) throw optionUnavailable(field, `${AI_OFF}; until then, leave out the "json" format.`);
    if (ai !== null) refuse(field, '"json" is listed twice.');
    const { type: _type, prompt, schema, ...rest } = typeof entry === "string" ? { type } : entry;
    const extra = Object.keys(rest)[0];
    if (extra !== undefined) refuse(`${field}.${extra.slice(0, 64)}`, '"json" takes only prompt and schema.');
    if (prompt !== undefined && typeof prompt !== "string") refuse(`${field}.prompt`, "must be a string.");
    if (schema !== undefined && (typeof schema !== "object" || schema === null || Array.isArray(schema)))
      refuse(`${field}.schema`, "must be a JSON Schema object.");
    ai = requestedAi(prompt as string | undefined, schema as object | undefined);
    if (ai === null) refuse(field, '"json" needs a prompt, a schema or both.');
  });
  return { ai, mainContentOnly: body.onlyMainContent ?? true };
}

function documentFormats(body: FirecrawlCreateInput): DocumentFormat[] {
  const out: DocumentFormat[] = [];
  (body.formats ?? ["markdown"]).forEach((entry, i) => {
    const type = typeof entry === "string" ? entry : entry.type;
    if (type === "json") return; // aiAndMainContent's to answer
    if (!(DOCUMENT_FORMATS as readonly string[]).includes(type)) {
      const known = OTHER_FORMATS.has(type) ? "is not available on this deployment" : "is not a format";
      refuse(`formats[${i}]`, `${JSON.stringify(type)} ${known}; use ${DOCUMENT_FORMATS.join(", ")}.`);
    }
    if (typeof entry !== "string" && Object.keys(entry).length > 1)
      refuse(`formats[${i}]`, `${JSON.stringify(type)} takes no options.`);
    if (out.includes(type as DocumentFormat)) refuse(`formats[${i}]`, `${JSON.stringify(type)} is listed twice.`);
    out.push(type as DocumentFormat);
  });
  return out;
}

function selectors(field: string, list: string[]): string[] {
  list.forEach((selector, i) => {
    const problem = validateSelector(selector);
    if (problem) refuse(`${field}[${i}]`, `unsupported CSS selector (${problem})`);
  });
  return list;
}

function requestHeaders(headers: Record<string, string>): Record<string, string> {
  const entries = Object.entries(headers);
  if (entries.length > SCRAPE_LIMITS.maxHeaders) refuse("headers", `at most ${SCRAPE_LIMITS.maxHeaders} headers`);
  let bytes = 0;
  const seen = new Set<string>();
  for (const [name, value] of entries) {
    const problem = headerProblem(name, value);
    if (problem) refuse(`headers.${name.slice(0, 64)}`, problem);
    if (seen.has(name.toLowerCase())) refuse(`headers.${name}`, "is given twice");
    seen.add(name.toLowerCase());
    bytes += name.length + value.length + 4;
  }
  if (bytes > SCRAPE_LIMITS.maxHeaderBytes) refuse("headers", `at most ${SCRAPE_LIMITS.maxHeaderBytes} bytes in all`);
  return Object.fromEntries(entries);
}

/** Split into what can be fetched and what never can (Firecrawl's invalidURLs), or refuse the first bad one. */
function targetUrls(
  urls: string[],
  ignoreInvalid: boolean,
  allowLoopback: boolean,
): { urls: string[]; invalidURLs: string[] | undefined } {
  const valid: string[] = [];
  const invalid: string[] = [];
  urls.forEach((url, i) => {
    const parsed = TargetUrlSchema.safeParse(url);
    const target = parsed.success ? checkTarget(url, { allowLoopback }) : null;
    const problem = !parsed.success
      ? (parsed.error.issues[0]?.message ?? "is not a URL")
      : target && !target.ok
        ? `can never be fetched: ${target.reason}`
        : null;
    if (problem === null) valid.push(url);
    else if (ignoreInvalid) invalid.push(url);
    else refuse(`urls[${i}]`, `${url.slice(0, 200)} ${problem}`);
  });
  if (valid.length === 0) refuse("urls", "no valid URL to scrape (every one is in invalidURLs)");
  return { urls: valid, invalidURLs: ignoreInvalid ? invalid : undefined };
}

function webhookUrl(webhook: FirecrawlCreateInput["webhook"]): string | null {
  if (webhook === undefined) return null;
  if (typeof webhook === "string") return webhook;
  if (webhook.headers && Object.keys(webhook.headers).length > 0)
    refuse("webhook.headers", "custom headers are not sent; our webhooks are signed instead (docs/webhooks.md).");
  if (webhook.metadata && Object.keys(webhook.metadata).length > 0)
    refuse("webhook.metadata", "metadata is not echoed in our webhook events; match events on the batch id.");
  if (webhook.events && new Set(webhook.events).size < 4)
    refuse("webhook.events", "every event is sent (started, page, completed, failed); a subset is not available.");
  return webhook.url;
}
