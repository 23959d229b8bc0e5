/**
 * Request ids and the one structured log line per request.
 *
 * Every response carries `x-request-id` (the caller's, if well formed, else a new UUID),
 * and error bodies repeat it as `requestId`, so a user's report leads to the log line.
 * The line names the route pattern, never the URL: a query string may hold a key
 * (`?api_key=`), and headers are never logged at all.
 */
import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import type { AppEnv } from "../env";
import { log } from "../lib/log";

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
      log("info", "request", {
        requestId,
        method: c.req.method,
        route: routePattern(c),
        status: c.res.status,
        durationMs: Date.now() - started,
        accountId: c.get("accountId") ?? null,
        ...(c.get("errorCode") ? { code: c.get("errorCode") } : {}),
      });
    }
  };
}
