/**
 * Request ids and the one structured log line per request.
 *
 * Every response carries `x-request-id` (the caller's, if well formed, else a new UUID),
 * and error bodies repeat it as `requestId`, so a user's report leads to the log line.
 * The line names the route pattern, never the URL: a query string may hold a key
 * (`?api_key=`), and headers are never logged at all.
 *
 * Polls (successful reads of one batch: SDK waiters ask every second or two, per batch) are
 * sampled: one in POLL_LOG_SAMPLE gets the line, marked `sampled: N`. They are most of the
 * traffic and the line says nothing new about them; errors, slow polls and every other
 * request are always logged. Workers Logs still records every invocation.
 */
import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import type { AppEnv } from "../env";
import { log } from "../lib/log";
import { positiveInt } from "../lib/positive-int";

export const REQUEST_ID_HEADER = "x-request-id";

/** What we accept from a caller: 8 to 128 characters that cannot break a log or a header. */
const WELL_FORMED_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{7,127}$/;

export function requestIdFrom(header: string | undefined): string {
  return header !== undefined && WELL_FORMED_ID.test(header) ? header : crypto.randomUUID();
}

/** The route pattern that answered ("/api/batch/scrape/:batchId"), or null when none matched. */
export function routePattern(c: Context): string | null {
  const handlers = matchedRoutes(c).filter((r) => r.method !== "ALL");
  return handlers.at(-1)?.path ?? null;
}

const DEFAULT_POLL_LOG_SAMPLE = 100;
/** A poll at least this slow is always logged (ms waited on objects: Workers clocks move only across I/O). */
export const SLOW_POLL_MS = 1_000;

/**
 * Whether a request gets its log line, and with what sampling rate (1: every such request).
 * `poll`: a read of one batch that its batch object answered (the key's claim was set).
 */
export function requestLogRate(
  request: { poll: boolean; status: number; durationMs: number },
  sample: number,
  random: () => number = Math.random,
): number | null {
  const ok = request.status >= 200 && request.status < 300; // not an error, not a live view's 101
  if (!request.poll || !ok || request.durationMs >= SLOW_POLL_MS || sample <= 1) return 1;
  return random() * sample < 1 ? sample : null;
}

/** First middleware of the app: sets the request id, stamps the response, writes the line. */
export function observe(): MiddlewareHandler<AppEnv> {
  return async function observe(c, next) {
    const requestId = requestIdFrom(c.req.header(REQUEST_ID_HEADER));
    c.set("requestId", requestId);
    // Workers clocks advance only across I/O, so this is the time spent waiting on objects, R2, etc.
    const started = Date.now();
    try {
      await next();
    } finally {
      c.header(REQUEST_ID_HEADER, requestId);
      const durationMs = Date.now() - started;
      const rate = requestLogRate(
        { poll: c.get("keyClaim") !== undefined, status: c.res.status, durationMs },
        positiveInt(c.env.POLL_LOG_SAMPLE, DEFAULT_POLL_LOG_SAMPLE),
      );
      if (rate !== null) {
        log("info", "request", {
          requestId,
          method: c.req.method,
          route: routePattern(c),
          status: c.res.status,
          durationMs,
          accountId: c.get("accountId") ?? null,
          ...(c.get("errorCode") ? { code: c.get("errorCode") } : {}),
          ...(rate > 1 ? { sampled: rate } : {}),
        });
      }
    }
  };
}
