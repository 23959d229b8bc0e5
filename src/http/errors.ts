import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";

/**
 * The one error type of the API. Thrown anywhere in a request; `onError`
 * turns it into `{ status: "error", message, code }` with its HTTP status.
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

export function errorBody(code: string, message: string) {
  return { status: "error" as const, message, code };
}

/** Hono's own exceptions (bad JSON, body limit) keep their status, in our envelope. */
function fromHttpException(err: HTTPException): ApiError {
  if (err.status === 413) return new ApiError(413, "PAYLOAD_TOO_LARGE", "Request body is too large.");
  if (err.status === 400 && /json/i.test(err.message)) {
    return new ApiError(400, "INVALID_JSON", "Request body is not valid JSON.");
  }
  return new ApiError(err.status as ContentfulStatusCode, "BAD_REQUEST", err.message || "Bad request.");
}

/** `app.onError`: known errors in the envelope; anything else is logged and hidden as a 500. */
export function handleError(err: Error, c: Context) {
  const apiError =
    err instanceof ApiError ? err : err instanceof HTTPException ? fromHttpException(err) : undefined;
  if (apiError) {
    return c.json(errorBody(apiError.code, apiError.message), apiError.status, apiError.headers);
  }
  console.error(JSON.stringify({ level: "error", msg: "unhandled error", error: String(err?.stack ?? err) }));
  return c.json(errorBody("INTERNAL_ERROR", "Internal server error."), 500);
}
