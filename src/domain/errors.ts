/**
 * Failures that objects return (not throw: RPC keeps only a thrown error's message)
 * and the HTTP status each maps to. Codes are the API's public error codes.
 */
export const ERROR_STATUS = {
  VALIDATION_ERROR: 400,
  INVALID_JSON: 400,
  NO_FAILED_ITEMS: 400,
  NOT_ACTIVE: 400,
  /** A create field this deployment does not offer (AI off, no proxy pool, no screenshots, no COOKIE_SECRET). */
  OPTION_UNAVAILABLE: 400,
  MISSING_API_KEY: 401,
  UNAUTHORIZED: 401,
  /** Spidra's status for it (batch-scrape-retry; its SDK maps 403 to SpidraInsufficientCreditsError). */
  INSUFFICIENT_CREDITS: 403,
  INVALID_API_KEY: 403,
  ADMIN_DISABLED: 403,
  NOT_FOUND: 404,
  /** The batch was finished longer ago than RETENTION_DAYS and has been removed. */
  BATCH_EXPIRED: 410,
  METHOD_NOT_ALLOWED: 405,
  ALREADY_TERMINAL: 409,
  BATCH_CANCELLED: 409,
  RETRY_IN_PROGRESS: 409,
  ALREADY_EXISTS: 409,
  ACCOUNT_CLOSED: 409,
  /** Retry of a batch whose cookies were erased when it ended: it would run without them. */
  COOKIES_ERASED: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  UPGRADE_REQUIRED: 426,
  IDEMPOTENCY_KEY_REUSED: 422,
  RATE_LIMITED: 429,
  TOO_MANY_CONNECTIONS: 429,
  TOO_MANY_ACTIVE_BATCHES: 429,
  INTERNAL_ERROR: 500,
  RESERVATION_EXPIRED: 503,
  /** A key was revoked (or an account closed), but some batch object has not confirmed dropping its copy yet. */
  REVOCATION_PENDING: 503,
  UNAVAILABLE: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** What an object's method returns when it succeeds: `ok: true` beside the answer's fields. */
export type Ok<T> = { ok: true } & T;

export interface Failure {
  ok: false;
  code: ErrorCode;
  message: string;
}

export function fail(code: ErrorCode, message: string): Failure {
  return { ok: false, code, message };
}

/** The batch object's answer for a batch it does not hold (never created, or already removed). */
export function batchNotFound(): Failure {
  return fail("NOT_FOUND", "No batch found with this ID.");
}

/** The account object's answer before the account was opened (or for an id never used). */
export function accountNotFound(): Failure {
  return fail("NOT_FOUND", "No account with this id.");
}
