/** Zod schemas shared by routes: they validate requests and describe the OpenAPI document. */
import { z } from "@hono/zod-openapi";
import { LIMITS } from "../domain/limits";
import { PRIMARY_OUTPUT_FORMATS } from "../domain/pricing";
import type { BatchStatus } from "../domain/states";

export const ErrorSchema = z
  .object({
    status: z.literal("error"),
    message: z.string(),
    code: z.string(),
    requestId: z.string().openapi({ description: "The response's x-request-id: quote it when reporting a problem." }),
  })
  .openapi("Error", {
    example: {
      status: "error",
      message: "Cannot cancel a batch that is already completed.",
      code: "ALREADY_TERMINAL",
      requestId: "5f0c6a1e-7d1a-4a8e-9a53-2b1f6f0c9d11",
    },
  });

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: "Invalid request",
  401: "Missing credentials",
  403: "Invalid, revoked or expired credentials (INVALID_API_KEY), or not enough credits (INSUFFICIENT_CREDITS, Spidra's status for it)",
  404: "Not found (or not yours)",
  409: "Conflicts with the current state",
  410: "The batch expired (removed after RETENTION_DAYS); answered to its owner only",
  413: "Request body too large",
  415: "Body is not JSON",
  422: "Idempotency-Key reused with a different request",
  429: "Too many requests",
  503: "Temporarily unavailable; retry",
};

/** OpenAPI error responses for `statuses`, all with one envelope schema (the primary API's by default). */
export function errorResponsesWith<const S extends number, Schema extends z.ZodType>(schema: Schema, ...statuses: S[]) {
  return Object.fromEntries(
    statuses.map((s) => [
      s,
      { description: ERROR_DESCRIPTIONS[s] ?? "Error", content: { "application/json": { schema } } },
    ]),
  ) as Record<S, { description: string; content: { "application/json": { schema: Schema } } }>;
}

export function errorResponses<const S extends number>(...statuses: S[]) {
  return errorResponsesWith(ErrorSchema, ...statuses);
}

/**
 * `z.record(key, value)` that refuses more than `max` entries before it validates any: a
 * body with 100k entries costs counting to `max + 1`, not 100k key and value checks (a
 * `.refine` on the record would run after them).
 */
export function boundedRecord<K extends z.core.$ZodRecordKey, V extends z.ZodType>(key: K, value: V, max: number) {
  const record = z.record(key, value);
  return z.preprocess((input, ctx) => {
    if (input === null || typeof input !== "object" || Array.isArray(input)) return input; // the record reports the type
    let entries = 0;
    for (const name in input) {
      if (Object.hasOwn(input, name) && ++entries > max) {
        ctx.addIssue({ code: "custom", message: `must have at most ${max} entries` });
        break;
      }
    }
    return input;
  }, record) as unknown as z.ZodType<z.output<typeof record>, z.input<typeof record>>;
}

/** A URL a batch may contain: http(s), no credentials, bounded length. */
export const TargetUrlSchema = z
  .string()
  .max(LIMITS.maxUrlLength, `must be at most ${LIMITS.maxUrlLength} characters`)
  .superRefine((value, ctx) => {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      ctx.addIssue({ code: "custom", message: "must be an absolute http(s) URL" });
      return;
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      ctx.addIssue({ code: "custom", message: `must use http or https, not ${url.protocol.slice(0, -1)}` });
    } else if (url.username || url.password) {
      ctx.addIssue({ code: "custom", message: "must not contain credentials" });
    }
  })
  .openapi({ example: "https://example.com/page" });

export const IdempotencyKeyHeader = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[\x21-\x7e]+$/, "must be 1 to 255 visible ASCII characters")
  .optional()
  .openapi({ description: "Idempotency-Key: makes a retried request safe (kept 24 h)." });

/** A batch's state (src/domain/states.ts), on both surfaces. */
export const BatchStatusSchema = z.enum([
  "pending",
  "running",
  "completed",
  "failed",
  "cancelled",
]) satisfies z.ZodType<BatchStatus>;

export const OutputSchema = z.enum(PRIMARY_OUTPUT_FORMATS);

/** A page number or size in a query string: decimal digits only (no `1e1`, `0x10`, ` 5`). */
export function pageQuery(max: number, fallback: number) {
  return z
    .string()
    .regex(/^[0-9]{1,16}$/, "must be a whole number")
    .default(String(fallback))
    .transform(Number)
    .pipe(z.number().int("must be a whole number").min(1, "must be at least 1").max(max, `must be at most ${max}`));
}

/** Like pageQuery, but absent stays undefined (the route decides what no size means). */
export function optionalPageQuery(max: number) {
  return z
    .string()
    .regex(/^[0-9]{1,16}$/, "must be a whole number")
    .transform(Number)
    .pipe(z.number().int("must be a whole number").min(1, "must be at least 1").max(max, `must be at most ${max}`))
    .optional();
}

export const CursorSchema = z
  .string()
  .regex(/^\d{1,15}$/, "must be a cursor returned by a previous page")
  .optional();
