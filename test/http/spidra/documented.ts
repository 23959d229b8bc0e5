/**
 * Spidra's documented shapes, written from its API reference (docs.spidra.io,
 * api-reference/scraping: batch-scrape, batch-scrape-status, batch-scrape-list,
 * batch-scrape-cancel, batch-scrape-retry; api-reference/account/usage-stats) and the type
 * declarations of its Node SDK (spidra-io/spidra-js v0.3.0, src/types/batch.ts and usage.ts),
 * NOT from this service's output. Objects are not strict: a client ignores fields it does not
 * know, so our extra fields are allowed; every documented field must be there with its type.
 */
import { z } from "zod";

const isoOrNull = z.string().datetime({ offset: true }).nullable();

/** POST /batch/scrape → 202 (BatchScrapeQueued). */
export const Queued = z.object({ status: z.literal("queued"), batchId: z.string().uuid(), total: z.number().int() });

/** The documented item statuses (the API reference lists cancelled; the SDK's union omits it). */
export const ITEM_STATUSES = ["pending", "running", "completed", "failed", "cancelled"] as const;
export const BATCH_STATUSES = ["pending", "running", "completed", "failed", "cancelled"] as const;

/** One element of `items` (BatchItem). */
export const Item = z.object({
  uuid: z.string().uuid(),
  url: z.string(),
  jobId: z.string().nullable(),
  status: z.enum(ITEM_STATUSES),
  result: z.unknown(),
  error: z.string().nullable(),
  creditsUsed: z.number().int().min(0),
  startedAt: isoOrNull,
  finishedAt: isoOrNull,
  screenshotUrl: z.string().nullable(),
});

/** GET /batch/scrape/{batchId} (BatchScrapeResponse). */
export const BatchStatus = z.object({
  status: z.enum(BATCH_STATUSES),
  totalUrls: z.number().int(),
  completedCount: z.number().int(),
  failedCount: z.number().int(),
  items: z.array(Item),
  createdAt: z.string().datetime({ offset: true }),
  finishedAt: isoOrNull,
});

/** DELETE /batch/scrape/{batchId} (BatchCancelResponse). */
export const Cancelled = z.object({
  status: z.literal("cancelled"),
  cancelledItems: z.number().int(),
  creditsRefunded: z.number().int(),
});

/** POST /batch/scrape/{batchId}/retry → 202. */
export const Retried = z.object({ status: z.literal("queued"), retriedCount: z.number().int() });

/** GET /batch/scrape?page&limit (BatchListResponse): limit defaults to 20, at most 50. */
export const List = z.object({
  jobs: z.array(
    z.object({
      uuid: z.string().uuid(),
      status: z.enum(BATCH_STATUSES),
      totalUrls: z.number().int(),
      completedCount: z.number().int(),
      failedCount: z.number().int(),
      outputFormat: z.enum(["json", "markdown"]),
      scrapingChannel: z.string().min(1),
      createdAt: z.string().datetime({ offset: true }),
      finishedAt: isoOrNull,
    }),
  ),
  pagination: z.object({
    page: z.number().int(),
    limit: z.number().int(),
    total: z.number().int(),
    totalPages: z.number().int(),
  }),
});

/** GET /usage-stats?range=7d|30d|weekly: `{ status, data: UsageStatRow[] }` (the SDK returns `data`). */
export const UsageStats = z.object({
  status: z.string(),
  data: z.array(
    z.object({
      label: z.string(),
      date: z.string(),
      tokens: z.number(),
      requests: z.number(),
      crawls: z.number(),
      captchas: z.number(),
      latency: z.number(),
      credits: z.number(),
    }),
  ),
});

/** Errors: `{ status: "error", message }`, some with a machine `code` (api-reference/errors). */
export const ErrorBody = z.object({
  status: z.literal("error"),
  message: z.string().min(1),
  code: z.string().optional(),
});

/**
 * How the SDK turns a status into its error class (src/lib/http.ts): 401 authentication,
 * 403 insufficient credits, 429 rate limit, 500 server, anything else a plain SpidraError.
 */
export function sdkErrorClass(status: number): string {
  return (
    {
      401: "SpidraAuthenticationError",
      403: "SpidraInsufficientCreditsError",
      429: "SpidraRateLimitError",
      500: "SpidraServerError",
    }[status] ?? "SpidraError"
  );
}
