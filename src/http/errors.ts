import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { AppEnv } from "../env";
import { log } from "../lib/log";
import { requestIdFrom, routePattern } from "./observability";

/**
 * The one error type of the API. Thrown anywhere in a request; `onError`
 * turns it into `{ status: "error", message, code, requestId }` with its HTTP status.
 */
export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

/** The longest error message any surface sends: a message built from the request stays small. */
export const MAX_MESSAGE_CHARS = 1024;

/** `text` cut to `max` characters, marked with "…" when cut (never splitting a surrogate pair). */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max - 1;
  if (/[\uD800-\uDBFF]/.test(text[end - 1] ?? "")) end--;
  return `${text.slice(0, end)}…`;
}

/** `requestId` is the response's x-request-id (src/http/observability.ts): what a user quotes in a report. */
export function errorBody(code: string, message: string, requestId: string) {
  return { status: "error" as const, message: clip(message, MAX_MESSAGE_CHARS), code, requestId };
}

/** Hono's own exceptions (bad JSON, body limit) keep their status, in our envelope. */
function fromHttpException(err: HTTPException): ApiError {
  if (err.status === 413) return new ApiError(413, "PAYLOAD_TOO_LARGE", "Request body is too large.");
  if (err.status === 400 && /json/i.test(err.message)) {
    return new ApiError(400, "INVALID_JSON", "Request body is not valid JSON.");
  }
  return new ApiError(err.status as ContentfulStatusCode, "BAD_REQUEST", err.message || "Bad request.");
}

/**
 * `app.onError`: known errors in the envelope; anything else is logged once, with its
 * cause and the request id, and hidden as a 500.
 */
export function handleError(err: Error, c: Context<AppEnv>) {
  const requestId = c.get("requestId") ?? requestIdFrom(undefined);
  const apiError = err instanceof ApiError ? err : err instanceof HTTPException ? fromHttpException(err) : undefined;
  if (apiError) {
    c.set("errorCode", apiError.code);
    return c.json(errorBody(apiError.code, apiError.message, requestId), apiError.status, apiError.headers);
  }
  // A Durable Object that was reset or overloaded mid-call: the platform marks these; the
  // state the object committed is intact, so the client may simply try again.
  const infra = err as { retryable?: unknown; overloaded?: unknown };
  if (infra.retryable === true || infra.overloaded === true) {
    c.set("errorCode", "UNAVAILABLE");
    log("warn", "object unavailable", { requestId, route: routePattern(c), error: String(err) });
    return c.json(errorBody("UNAVAILABLE", "Temporarily unavailable; please retry.", requestId), 503, {
      "Retry-After": "1",
    });
  }
  c.set("errorCode", "INTERNAL_ERROR");
  log("error", "unhandled error", { requestId, route: routePattern(c), error: String(err?.stack ?? err) });
  return c.json(errorBody("INTERNAL_ERROR", "Internal server error.", requestId), 500);
}
