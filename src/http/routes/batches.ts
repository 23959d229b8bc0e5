/** The primary API: create, list, read, cancel and retry batches. */
import { createRoute, z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { validateSelector } from "../../executor/extract-json";
import { LIMITS } from "../../domain/limits";
import { DEFAULT_OUTPUT } from "../../domain/pricing";
import type { AppEnv } from "../../env";
import { ApiError } from "../errors";
import { createBatch, maxUrls } from "../create-batch";
import { accountObject, batchObject, requireUuid, unwrap } from "../objects";
import {
  BatchStatusSchema,
  boundedRecord,
  CursorSchema,
  errorResponses,
  IdempotencyKeyHeader,
  OutputSchema,
  pageQuery,
  TargetUrlSchema,
} from "../schemas";
import { newRouter } from "../validation";

const SELECTOR_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;

/** A selector HTMLRewriter accepts: checked now, so a batch never fails later on its own selector. */
const CssSelectorSchema = z
  .string()
  .min(1)
  .max(500)
  .superRefine((selector, ctx) => {
    const problem = validateSelector(selector);
    if (problem) ctx.addIssue({ code: "custom", message: `unsupported CSS selector (${problem})` });
  });

const CreateBatchBody = z
  .object({
    urls: z.array(TargetUrlSchema).min(1, "must contain at least one URL"),
    output: OutputSchema.optional().openapi({
      description: `Defaults to "${DEFAULT_OUTPUT}". json: 2 credits per URL, markdown: 1.`,
    }),
    // The count is checked before any entry: 100k selectors must not cost 100k selector checks.
    selectors: boundedRecord(
      z.string().regex(SELECTOR_NAME, "names must be identifiers"),
      CssSelectorSchema,
      LIMITS.maxSelectors,
    )
      .optional()
      .openapi({ example: { title: "h1" } }),
    maxConcurrency: z.number().int("must be a whole number").min(1).max(LIMITS.maxConcurrency).optional(),
    webhookUrl: z.string().max(LIMITS.maxUrlLength).optional().openapi({
      description:
        "https URL that receives this batch's signed events (batch.started, item.completed, item.failed, batch.completed, batch.failed, batch.cancelled)",
    }),
  })
  .strict()
  .openapi("CreateBatch", { example: { urls: ["https://example.com/a", "https://example.com/b"], output: "json" } });

const ItemSchema = z
  .object({
    uuid: z.string().uuid(),
    url: z.string(),
    status: z.enum(["pending", "running", "completed", "failed", "cancelled"]),
    result: z.unknown(),
    error: z.object({ code: z.string(), message: z.string() }).nullable().openapi({
      description:
        "Why the item failed; EXTRACTION_LIMIT: the page passed an extraction limit (the message names it and its value)",
    }),
    creditsUsed: z.number().int().openapi({
      description:
        "Credits charged in the item's current round: its price when it completed or failed with EXTRACTION_LIMIT (the work was done), else 0",
    }),
    attempts: z.number().int(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
  })
  .openapi("BatchItem");

const BatchSchema = z
  .object({
    batchId: z.string().uuid(),
    status: BatchStatusSchema,
    output: z.string(),
    maxConcurrency: z.number().int(),
    totalUrls: z.number().int(),
    pendingCount: z.number().int(),
    runningCount: z.number().int(),
    completedCount: z.number().int(),
    failedCount: z.number().int(),
    cancelledCount: z.number().int(),
    creditsPerItem: z.number().int(),
    creditsReserved: z
      .number()
      .int()
      .openapi({ description: "All credits ever reserved for the batch (= used + refunded + still held)" }),
    creditsUsed: z.number().int(),
    creditsRefunded: z.number().int(),
    createdAt: z.string(),
    startedAt: z.string().nullable(),
    cancelledAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
    items: z.array(ItemSchema),
    nextCursor: z.string().nullable(),
  })
  .openapi("Batch");

const BatchIdParams = z.object({
  batchId: z.string().openapi({ param: { name: "batchId", in: "path" }, format: "uuid" }),
});

/**
 * Refuses more URLs than MAX_URLS_PER_BATCH before zod looks at them, so validation work
 * (and the list of problems it reports) is bounded by the limit, not by the body size.
 */
export const urlsWithinLimit: MiddlewareHandler<AppEnv> = async (c, next) => {
  const body: unknown = await c.req.json().catch(() => undefined); // bad JSON is the validator's to report
  const urls = body !== null && typeof body === "object" ? (body as { urls?: unknown }).urls : undefined;
  const limit = maxUrls(c.env);
  if (Array.isArray(urls) && urls.length > limit) {
    throw new ApiError(400, "VALIDATION_ERROR", `urls: must contain at most ${limit} URLs (got ${urls.length})`);
  }
  await next();
};

const create = createRoute({
  method: "post",
  path: "/api/batch/scrape",
  middleware: [urlsWithinLimit] as const,
  tags: ["Batches"],
  summary: "Create a batch",
  description:
    "Reserves `total × creditsPerItem` credits up front and queues every URL. A URL that can never be fetched (a private, loopback or other special-purpose address, `localhost`, a single-label name) is refused with 400 naming it, and nothing is reserved.",
  security: [{ ApiKeyAuth: [] }],
  request: {
    headers: z.object({ "idempotency-key": IdempotencyKeyHeader }),
    body: { content: { "application/json": { schema: CreateBatchBody } }, required: true },
  },
  responses: {
    202: {
      description: "Batch queued",
      headers: z.object({ Location: z.string() }),
      content: {
        "application/json": {
          schema: z.object({ status: z.literal("queued"), batchId: z.string().uuid(), total: z.number().int() }),
        },
      },
    },
    ...errorResponses(400, 401, 402, 403, 413, 415, 422, 429, 503),
  },
});

const list = createRoute({
  method: "get",
  path: "/api/batch/scrape",
  tags: ["Batches"],
  summary: "List your batches, newest first",
  security: [{ ApiKeyAuth: [] }],
  request: {
    query: z.object({
      page: pageQuery(1_000_000, 1),
      limit: pageQuery(LIMITS.batchesPageMax, LIMITS.batchesPageDefault),
    }),
  },
  responses: {
    200: {
      description: "A page of batches",
      content: {
        "application/json": {
          schema: z.object({
            jobs: z.array(
              z.object({
                uuid: z.string().uuid(),
                status: BatchStatusSchema,
                totalUrls: z.number().int(),
                completedCount: z.number().int(),
                failedCount: z.number().int(),
                createdAt: z.string(),
                finishedAt: z.string().nullable(),
              }),
            ),
            pagination: z.object({
              page: z.number().int(),
              limit: z.number().int(),
              total: z.number().int(),
              totalPages: z.number().int(),
            }),
          }),
        },
      },
    },
    ...errorResponses(400, 401, 403),
  },
});

const get = createRoute({
  method: "get",
  path: "/api/batch/scrape/{batchId}",
  tags: ["Batches"],
  summary: "Get a batch and a page of its items",
  security: [{ ApiKeyAuth: [] }],
  request: {
    params: BatchIdParams,
    query: z.object({ cursor: CursorSchema, limit: pageQuery(LIMITS.itemsPageMax, LIMITS.itemsPageDefault) }),
  },
  responses: {
    200: { description: "The batch", content: { "application/json": { schema: BatchSchema } } },
    ...errorResponses(400, 401, 403, 404),
  },
});

const cancel = createRoute({
  method: "delete",
  path: "/api/batch/scrape/{batchId}",
  tags: ["Batches"],
  summary: "Cancel a batch",
  description:
    "Cancels a pending or running batch. Credits reserved for items that have not started are refunded; items already running finish and are charged.",
  security: [{ ApiKeyAuth: [] }],
  request: { params: BatchIdParams },
  responses: {
    200: {
      description: "Batch cancelled",
      content: {
        "application/json": {
          schema: z
            .object({
              status: z.literal("cancelled"),
              cancelledItems: z.number().int(),
              creditsRefunded: z.number().int(),
            })
            .openapi({ example: { status: "cancelled", cancelledItems: 8, creditsRefunded: 16 } }),
        },
      },
    },
    ...errorResponses(401, 403, 404, 409),
  },
});

const retry = createRoute({
  method: "post",
  path: "/api/batch/scrape/{batchId}/retry",
  tags: ["Batches"],
  summary: "Retry the failed items of a batch",
  description:
    "Failed items go back to pending, with fresh credits reserved for them. Items that failed with EXTRACTION_LIMIT are retried too, and charged again if they fail again.",
  security: [{ ApiKeyAuth: [] }],
  request: { params: BatchIdParams },
  responses: {
    202: {
      description: "Failed items queued again",
      content: {
        "application/json": { schema: z.object({ status: z.literal("queued"), retriedCount: z.number().int() }) },
      },
    },
    ...errorResponses(400, 401, 402, 403, 404, 409, 503),
  },
});

const result = createRoute({
  method: "get",
  path: "/api/batch/scrape/{batchId}/items/{itemId}/result",
  tags: ["Batches"],
  summary: "The stored result of a completed item",
  description: "JSON for `output: json`, Markdown for `output: markdown`. 404 until the item has completed.",
  security: [{ ApiKeyAuth: [] }],
  request: {
    params: BatchIdParams.extend({
      itemId: z.string().openapi({ param: { name: "itemId", in: "path" }, format: "uuid" }),
    }),
  },
  responses: {
    200: {
      description: "The result",
      content: {
        "application/json": { schema: z.record(z.string(), z.unknown()) },
        "text/markdown": { schema: z.string() },
      },
    },
    ...errorResponses(401, 403, 404),
  },
});

const cancelAll = createRoute({
  method: "post",
  path: "/api/batch/scrape/cancel-all",
  tags: ["Batches"],
  summary: "Cancel every pending or running batch",
  description: "The same per-item rule as cancelling one batch, for each of your active batches. Safe to call twice.",
  security: [{ ApiKeyAuth: [] }],
  responses: {
    200: {
      description: "Batches cancelled",
      content: {
        "application/json": {
          schema: z.object({
            status: z.literal("cancelled"),
            batchesCancelled: z.number().int(),
            batchesFailedToCancel: z.number().int(),
            cancelledItems: z.number().int(),
            creditsRefunded: z.number().int(),
          }),
        },
      },
    },
    ...errorResponses(401, 403),
  },
});

/** The route definitions, for the typed client (src/client) to derive its types from. */
export const batchRoutes = { create, list, get, cancel, cancelAll, retry, result };
export type CreateBatchInput = z.input<typeof CreateBatchBody>;

export const batches = newRouter()
  .openapi(create, async (c) => {
    const body = c.req.valid("json");
    const key = c.req.valid("header")["idempotency-key"];
    const created = await createBatch(
      c.env,
      c.get("accountId"),
      body,
      key === undefined ? null : { key, request: body },
    );
    const location = `/api/batch/scrape/${created.batch.batchId}`;
    return c.json({ status: "queued" as const, batchId: created.batch.batchId, total: created.batch.totalUrls }, 202, {
      Location: location,
    });
  })
  .openapi(cancelAll, async (c) => {
    const r = await accountObject(c.env, c.get("accountId")).stopAll();
    return c.json(
      {
        status: "cancelled" as const,
        batchesCancelled: r.stopped,
        batchesFailedToCancel: r.failed,
        cancelledItems: r.cancelledItems,
        creditsRefunded: r.creditsRefunded,
      },
      200,
    );
  })
  .openapi(list, async (c) => {
    const { page, limit } = c.req.valid("query");
    const { jobs, total } = await accountObject(c.env, c.get("accountId")).listBatches(page, limit);
    return c.json(
      {
        jobs: jobs.map((j) => ({
          uuid: j.batchId,
          status: j.status,
          totalUrls: j.total,
          completedCount: j.completed,
          failedCount: j.failed,
          createdAt: new Date(j.createdAt).toISOString(),
          finishedAt: j.finishedAt === null ? null : new Date(j.finishedAt).toISOString(),
        })),
        pagination: { page, limit, total, totalPages: Math.ceil(total / limit) },
      },
      200,
    );
  })
  .openapi(get, async (c) => {
    const batchId = requireUuid(c.req.valid("param").batchId, "batch");
    const { cursor, limit } = c.req.valid("query");
    const found = unwrap(
      await batchObject(c.env, batchId).get(c.get("accountId"), cursor === undefined ? -1 : Number(cursor), limit),
    );
    return c.json({ ...found.batch, items: found.items, nextCursor: found.nextCursor }, 200);
  })
  .openapi(cancel, async (c) => {
    const batchId = requireUuid(c.req.valid("param").batchId, "batch");
    const done = unwrap(await batchObject(c.env, batchId).cancel(c.get("accountId")));
    return c.json(
      { status: "cancelled" as const, cancelledItems: done.cancelledItems, creditsRefunded: done.creditsRefunded },
      200,
    );
  })
  .openapi(result, async (c) => {
    const { batchId: rawBatchId, itemId: rawItemId } = c.req.valid("param");
    const batchId = requireUuid(rawBatchId, "batch");
    const itemId = requireUuid(rawItemId, "item");
    const found = unwrap(await batchObject(c.env, batchId).resultLocation(c.get("accountId"), itemId));
    const object = await c.env.RESULTS.get(found.key);
    if (!object) throw new ApiError(404, "NOT_FOUND", "No stored result for this item (yet).");
    const headers = new Headers({
      "content-type": object.httpMetadata?.contentType ?? "application/octet-stream",
      etag: object.httpEtag,
    });
    return new Response(object.body, { status: 200, headers }) as never;
  })
  .openapi(retry, async (c) => {
    const batchId = requireUuid(c.req.valid("param").batchId, "batch");
    const done = unwrap(await batchObject(c.env, batchId).retry(c.get("accountId")));
    return c.json({ status: "queued" as const, retriedCount: done.retriedCount }, 202);
  });
