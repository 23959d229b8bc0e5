/**
 * Fetches one scraping target and answers with its raw bytes or a classified failure.
 *
 * Redirects are followed by hand so that every hop passes `checkTarget` before any
 * request goes out; one deadline covers all hops and the body; the body is read in
 * chunks and given up as soon as it passes the cap. Charset decoding happens elsewhere.
 *
 * A batch's cookies go as a `Cookie` header to the item URL's own origin only: a hop to
 * another origin (another host, scheme or port) goes without them, as does any hop after it
 * that is not back on the first origin.
 *
 * Tests pass their own `fetcher`; production uses the platform's `fetch`.
 */
import { checkTarget } from "../domain/target-safety";

export interface FetchPolicy {
  /** Whole request: every redirect hop, headers and body. */
  timeoutMs: number;
  maxBytes: number;
  maxRedirects: number;
  userAgent: string;
  /** Passed to `checkTarget`; dev/test only. */
  allowLoopback: boolean;
  /** The batch's own headers (checked at creation: src/domain/scrape-options.ts); ours win on User-Agent. */
  headers?: Record<string, string>;
}

export const DEFAULT_FETCH_POLICY: FetchPolicy = {
  timeoutMs: 15_000,
  maxBytes: 5 * 1024 * 1024,
  maxRedirects: 5,
  // Placeholder project page: replace with the real one so site owners can reach us.
  userAgent: "BatchScrapeBot/1.0 (+https://github.com/batch-scrape/batch-scrape-control-plane)",
  allowLoopback: false,
};

export type FetchSuccess = {
  ok: true;
  /** The URL as the caller gave it. */
  url: string;
  /** Where the body came from, after redirects. */
  finalUrl: string;
  statusCode: number;
  contentType: string | null;
  body: Uint8Array;
  redirects: number;
  startedAt: number;
  durationMs: number;
};

export type FetchFailure = {
  ok: false;
  retryable: boolean;
  code: string;
  message: string;
  statusCode?: number;
  /** The last URL a request was made to (absent when none was made). */
  finalUrl?: string;
  retryAfterSeconds?: number;
  durationMs: number;
};

export type FetchResult = FetchSuccess | FetchFailure;

const ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8";
const SUPPORTED_MEDIA_TYPES = new Set(["text/html", "application/xhtml+xml", "text/plain"]);
/** Statuses the Fetch standard follows; other 3xx (300, 304, ...) are answers, not hops. */
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const MAX_RETRY_AFTER_SECONDS = 3600;

/** What the steps below produce; `fetchPage` adds the timing. */
type PageOutcome = Omit<FetchSuccess, "startedAt" | "durationMs"> | Omit<FetchFailure, "durationMs">;

interface FailureContext {
  statusCode?: number;
  finalUrl?: string;
  retryAfterSeconds?: number;
}

export async function fetchPage(
  url: string,
  policy: FetchPolicy,
  // A wrapper, not `globalThis.fetch` itself: some runtimes refuse a detached `fetch`.
  fetcher: typeof fetch = (input, init) => fetch(input, init),
  /** A checked Cookie header value (src/domain/cookies.ts), or null. */
  cookies: string | null = null,
): Promise<FetchResult> {
  const startedAt = Date.now();
  const deadline = new AbortController();
  const timer = setTimeout(
    () => deadline.abort(new DOMException("fetch deadline passed", "TimeoutError")),
    policy.timeoutMs,
  );
  try {
    const outcome = await followRedirects(url, policy, fetcher, deadline.signal, cookies);
    const durationMs = Date.now() - startedAt;
    return outcome.ok ? { ...outcome, startedAt, durationMs } : { ...outcome, durationMs };
  } finally {
    clearTimeout(timer);
  }
}

async function followRedirects(
  url: string,
  policy: FetchPolicy,
  fetcher: typeof fetch,
  signal: AbortSignal,
  cookies: string | null,
): Promise<PageOutcome> {
  const targetPolicy = { allowLoopback: policy.allowLoopback };
  const first = checkTarget(url, targetPolicy);
  if (!first.ok) return failure("BLOCKED_TARGET", false, first.reason);
  let current = first.url;
  for (let redirects = 0; ; redirects++) {
    const finalUrl = current.href;
    let response: Response;
    try {
      const headers: Record<string, string> = { Accept: ACCEPT, ...policy.headers, "User-Agent": policy.userAgent };
      if (cookies !== null && current.origin === first.url.origin) headers.Cookie = cookies;
      // Every hop is a GET, so a 301/302/303 after a POST elsewhere still becomes a GET here.
      const request = fetcher(finalUrl, { method: "GET", redirect: "manual", headers, signal });
      response = await untilAborted(request, signal);
    } catch (error) {
      return requestFailure(error, signal, policy, { finalUrl });
    }
    const statusCode = response.status;
    const location = response.headers.get("location");
    if (!REDIRECT_STATUSES.has(statusCode) || location === null) {
      return readPage(response, url, finalUrl, redirects, policy, signal);
    }
    discardBody(response);
    const at = { statusCode, finalUrl };
    if (redirects >= policy.maxRedirects) {
      return failure("TOO_MANY_REDIRECTS", false, `more than ${policy.maxRedirects} redirects`, at);
    }
    let next: URL;
    try {
      next = new URL(location, current);
    } catch {
      return failure("HTTP_3XX_BAD_LOCATION", false, `redirect Location ${JSON.stringify(location)} is not a URL`, at);
    }
    const checked = checkTarget(next, targetPolicy);
    if (!checked.ok) return failure("BLOCKED_TARGET", false, checked.reason, at);
    current = checked.url;
  }
}

/** A response that is not a hop: classify its status, vet its type and size, read it. */
async function readPage(
  response: Response,
  url: string,
  finalUrl: string,
  redirects: number,
  policy: FetchPolicy,
  signal: AbortSignal,
): Promise<PageOutcome> {
  const statusCode = response.status;
  const at = { statusCode, finalUrl };
  if (statusCode < 200 || statusCode > 299) {
    discardBody(response);
    return statusFailure(response, at);
  }
  const contentType = response.headers.get("content-type");
  if (!isSupportedContentType(contentType)) {
    discardBody(response);
    return failure("UNSUPPORTED_CONTENT_TYPE", false, `content type ${contentType} is not HTML or text`, at);
  }
  const declaredLength = parseContentLength(response.headers.get("content-length"));
  if (declaredLength !== null && declaredLength > policy.maxBytes) {
    discardBody(response);
    return failure("TOO_LARGE", false, `Content-Length ${declaredLength} is over the ${policy.maxBytes}-byte cap`, at);
  }
  let body: Uint8Array | null;
  try {
    body = await readCapped(response.body, policy.maxBytes, signal);
  } catch (error) {
    return requestFailure(error, signal, policy, at);
  }
  if (body === null) return failure("TOO_LARGE", false, `body is over the ${policy.maxBytes}-byte cap`, at);
  return { ok: true, url, finalUrl, statusCode, contentType, body, redirects };
}

function statusFailure(response: Response, at: { statusCode: number; finalUrl: string }): PageOutcome {
  const status = response.status;
  const code = `HTTP_${status}`;
  if (status >= 300 && status <= 399 && !response.headers.has("location")) {
    return failure("HTTP_3XX_NO_LOCATION", false, `HTTP ${status} without a Location header`, at);
  }
  const retryable = status === 408 || status === 429 || (status >= 500 && status <= 599);
  if (!retryable) return failure(code, false, `HTTP ${status}`, at);
  const retryAfterSeconds = parseRetryAfter(response.headers.get("retry-after"), Date.now());
  return failure(code, true, `HTTP ${status}`, retryAfterSeconds === undefined ? at : { ...at, retryAfterSeconds });
}

/** A throw from fetch or from the body stream: ours when the deadline fired, the network's otherwise. */
function requestFailure(error: unknown, signal: AbortSignal, policy: FetchPolicy, at: FailureContext): PageOutcome {
  if (signal.aborted) return failure("TIMEOUT", true, `no complete response within ${policy.timeoutMs} ms`, at);
  const message = error instanceof Error ? error.message : String(error);
  return failure("FETCH_FAILED", true, message, at);
}

function failure(
  code: string,
  retryable: boolean,
  message: string,
  at: FailureContext = {},
): Omit<FetchFailure, "durationMs"> {
  return { ok: false, retryable, code, message, ...at };
}

/** Reads the whole body, or answers null (and cancels the stream) once it passes `maxBytes`. */
async function readCapped(
  body: ReadableStream | null,
  maxBytes: number,
  signal: AbortSignal,
): Promise<Uint8Array | null> {
  if (body === null) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const chunk = await untilAborted(reader.read(), signal);
      if (chunk.done) break;
      const bytes = asBytes(chunk.value);
      total += bytes.byteLength;
      if (total > maxBytes) {
        cancelQuietly(reader);
        return null;
      }
      chunks.push(bytes);
    }
  } catch (error) {
    cancelQuietly(reader);
    throw error;
  }
  return concat(chunks, total);
}

/**
 * Rejects when the signal aborts even if `work` ignores it: a fetcher or a body stream
 * that never looks at the signal must not outlive the deadline.
 */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

/** Frees the connection of a response whose body we will not read. Not awaited: a stuck stream must not stall us. */
function discardBody(response: Response): void {
  response.body?.cancel().catch(() => undefined);
}

function cancelQuietly(reader: ReadableStreamDefaultReader): void {
  reader.cancel().catch(() => undefined);
}

function asBytes(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value;
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  throw new TypeError("response body stream yielded something other than bytes");
}

function concat(chunks: readonly Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1 && chunks[0] !== undefined) return chunks[0];
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/** Missing or empty counts as acceptable: many servers omit it on HTML. */
function isSupportedContentType(contentType: string | null): boolean {
  if (contentType === null) return true;
  const mediaType = (contentType.split(";")[0] ?? "").trim().toLowerCase();
  return mediaType === "" || SUPPORTED_MEDIA_TYPES.has(mediaType);
}

function parseContentLength(value: string | null): number | null {
  if (value === null || !/^\s*\d+\s*$/.test(value)) return null;
  return Number(value);
}

/**
 * `Retry-After` is either delay-seconds or an HTTP date; both end up as whole seconds
 * from now, capped. The date must start with a day name, as all three HTTP date forms do:
 * `Date.parse` alone would read "7.5" as a date in 2001.
 */
function parseRetryAfter(value: string | null, now: number): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Math.min(Number(text), MAX_RETRY_AFTER_SECONDS);
  if (!/^[a-z]{3,9},?\s/i.test(text)) return undefined;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.min(Math.max(0, Math.ceil((at - now) / 1000)), MAX_RETRY_AFTER_SECONDS);
}
