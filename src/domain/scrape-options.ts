/**
 * How one page is scraped, beyond its output format: what a compatible surface (the
 * Firecrawl-style /v2) asks for and the executor honours. Stored on the batch, handed to the
 * executor with each lease (StartResult.options). Pure data and its limits; no I/O.
 */

/** The parts a `document` output may hold (Firecrawl's format names). */
export const DOCUMENT_FORMATS = ["markdown", "html", "rawHtml", "links"] as const;
export type DocumentFormat = (typeof DOCUMENT_FORMATS)[number];

export interface ScrapeOptions {
  /** For output `document`: which parts to build (no repeats; empty when Firecrawl's json format is the only one). */
  formats?: DocumentFormat[];
  /** CSS selectors: only the elements they match (and their content) are kept. */
  includeTags?: string[];
  /** CSS selectors: the elements they match are removed (after includeTags). */
  excludeTags?: string[];
  /** Extra request headers (checked by `headerProblem`). */
  headers?: Record<string, string>;
  /** The fetch deadline for this page, at most the deployment's own (FETCH_TIMEOUT_MS). */
  timeoutMs?: number;
}

export const SCRAPE_LIMITS = {
  maxTagSelectors: 50,
  maxSelectorChars: 200,
  maxHeaders: 20,
  maxHeaderNameChars: 64,
  maxHeaderValueChars: 1024,
  maxHeaderBytes: 8 * 1024,
  minTimeoutMs: 1_000,
  maxTimeoutMs: 300_000,
} as const;

/**
 * Headers a caller may not set: they belong to the connection (hop-by-hop), to our fetcher
 * (Host, lengths, encodings, the User-Agent that names us to site owners), or carry
 * credentials or client identity we do not forward for anyone.
 */
const FORBIDDEN_HEADERS = new Set([
  "host",
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "content-length",
  "content-encoding",
  "accept-encoding",
  "expect",
  "cookie",
  "cookie2",
  "authorization",
  "proxy-authorization",
  "user-agent",
  "forwarded",
  "via",
  "origin",
  "referer",
  "x-real-ip",
  "true-client-ip",
]);
const FORBIDDEN_PREFIXES = ["proxy-", "sec-", "cf-", "x-forwarded-"];
/** An HTTP token (RFC 9110). */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** One printable line: no CR, LF or other controls. */
const HEADER_VALUE = /^[\x20-\x7e\u00a0-\u00ff]*$/;

/** Why `name: value` may not be sent, or null if it may. */
export function headerProblem(name: string, value: string): string | null {
  if (name.length === 0 || name.length > SCRAPE_LIMITS.maxHeaderNameChars || !HEADER_NAME.test(name))
    return `must be a header name of at most ${SCRAPE_LIMITS.maxHeaderNameChars} token characters`;
  const lower = name.toLowerCase();
  if (FORBIDDEN_HEADERS.has(lower) || FORBIDDEN_PREFIXES.some((p) => lower.startsWith(p)))
    return "may not be set (hop-by-hop, credential, identity or fetcher-owned header)";
  if (value.length > SCRAPE_LIMITS.maxHeaderValueChars || !HEADER_VALUE.test(value))
    return `must be one printable line of at most ${SCRAPE_LIMITS.maxHeaderValueChars} characters`;
  return null;
}
