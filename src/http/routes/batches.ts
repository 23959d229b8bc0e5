/** The primary API: create, list, read, cancel and retry batches. */
import { createRoute, z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import {
  CUSTOM_ID_MAX_CHARS,
  customIdProblem,
  METADATA_MAX_BYTES,
  METADATA_MAX_DEPTH,
  metadataProblem,
} from "../../domain/item-inputs";
import { MAX_PROMPT_CHARS, requestedAi } from "../../domain/ai-extraction";
import { MAX_COOKIES_BYTES } from "../../domain/cookies";
import { LIMITS } from "../../domain/limits";
import { validateSelector } from "../../lib/css-selector";
import { AI_CREDITS_PER_ITEM, DEFAULT_OUTPUT, OUTPUT_FORMATS, type OutputFormat } from "../../domain/pricing";
import { mapBounded } from "../../lib/map-bounded";
import { ALL_ITEMS_INLINE_BYTES } from "../../batch/item-pages";
import type { AppEnv, Env } from "../../env";
import { ApiError } from "../errors";
import { type BatchRequest, createBatch, maxUrls, optionUnavailable } from "../create-batch";
import { readBatch } from "../batch-reads";
import { accountObject, batchObject, requireUuid, unwrap } from "../objects";
import {
  BatchStatusSchema,
  boundedRecord,
  CursorSchema,
  errorResponses,
  IdempotencyKeyHeader,
  optionalPageQuery,
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

/** A URL with the caller's own id and metadata (rules: src/domain/item-inputs.ts; uniqueness: create-batch.ts). */
const LabelledUrlSchema = z
  .object({
    url: TargetUrlSchema,
    customId: z
      .string()
      .superRefine((id, ctx) => {
        const problem = customIdProblem(id);
        if (problem) ctx.addIssue({ code: "custom", message: problem });
      })
      .optional()
      .openapi({
        description: `Your id for this item: 1 to ${CUSTOM_ID_MAX_CHARS} characters of printable text (no control characters), unique within the batch. Echoed on the item everywhere.`,
        example: "row-42",
      }),
    metadata: z
      .record(z.string(), z.unknown())
      .superRefine((value, ctx) => {
        const problem = metadataProblem(value);
        if (problem) ctx.addIssue({ code: "custom", message: problem });
      })
      .optional()
      .openapi({
        description: `A JSON object of yours, at most ${METADATA_MAX_BYTES} bytes as JSON and ${METADATA_MAX_DEPTH} levels deep. Echoed on the item everywhere.`,
        example: { sku: "A-1" },
      }),
  })
  .strict()
  .openapi("LabelledUrl");

const CreateBatchBody = z
  .object({
    urls: z
      .array(
        z.union([TargetUrlSchema, LabelledUrlSchema], {
          error: "must be a URL, or an object { url, customId?, metadata? }",
        }),
      )
      .min(1, "must contain at least one URL")
      .openapi({
        description:
          "The URLs to scrape, in order. An entry is a URL, or `{ url, customId?, metadata? }` to have your own id and metadata echoed on its item.",
      }),
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
    prompt: z
      .string()
      .optional()
      .openapi({
        description: `AI extraction through Workers AI (docs/ai-extraction.md): what to extract from each page, at most ${MAX_PROMPT_CHARS} characters. Blank counts as absent. Adds ${AI_CREDITS_PER_ITEM} credits per item. Where AI is turned off, a non-blank prompt is refused with 400 OPTION_UNAVAILABLE before anything is reserved.`,
      }),
    schema: z
      .record(z.string(), z.unknown())
      .optional()
      .openapi({
        description:
          'JSON Schema the AI answer must fit (output "json" only; a subset: type, properties, required, additionalProperties, items, min/maxItems, enum, const, min/maxLength, minimum, maximum, anyOf; top level type "object"). An answer that does not fit fails the item with AI_OUTPUT_INVALID. Alone (no prompt) it asks to extract what the schema describes.',
        example: { type: "object", properties: { title: { type: "string" } }, required: ["title"] },
      }),
    extractContentOnly: z.boolean().optional().openapi({
      description:
        "Main content only: navigation, site header and footer, asides, forms, scripts, embeds and cookie banners are dropped before extraction (json and markdown). Default false.",
    }),
    cookies: z
      .string()
      .optional()
      .openapi({
        description: `A Cookie header value, "name=value; name2=value2" (at most ${MAX_COOKIES_BYTES} bytes, no CR/LF), sent with this batch's fetches to each URL's own origin only (not across a redirect to another origin). Kept encrypted until the batch ends, then erased; never echoed or logged. A batch that ended cannot be retried (409 COOKIES_ERASED).`,
      }),
    useProxy: z.boolean().optional().openapi({
      description:
        "This deployment has no proxy pool: false or absent only; true is refused with 400 OPTION_UNAVAILABLE.",
    }),
    proxyCountry: z.string().optional().openapi({
      description: "This deployment has no proxy pool: any value is refused with 400 OPTION_UNAVAILABLE.",
    }),
    screenshot: z.boolean().optional().openapi({
      description:
        "This deployment has no browser to take screenshots with: false or absent only; true is refused with 400 OPTION_UNAVAILABLE.",
    }),
    fullPageScreenshot: z.boolean().optional().openapi({
      description:
        "This deployment has no browser to take screenshots with: false or absent only; true is refused with 400 OPTION_UNAVAILABLE.",
    }),
  })
  .strict()
  .openapi("CreateBatch", { example: { urls: ["https://example.com/a", "https://example.com/b"], output: "json" } });

/** An item as Spidra documents it (api-reference/scraping/batch-scrape-status), then our own fields. */
const ItemSchema = z
  .object({
    uuid: z.string().uuid(),
    index: z.number().int().openapi({ description: "The item's position in the batch's `urls`, from 0" }),
    customId: z.string().nullable().openapi({ description: "Your id for the item, as sent (null when none)" }),
    metadata: z
      .record(z.string(), z.unknown())
      .nullable()
      .openapi({ description: "Your metadata for the item, as sent (null when none)" }),
    url: z.string(),
    jobId: z.string().nullable().openapi({
      description: "The item's current run (`<item uuid>:r<round>:a<attempt>`); null until it first starts",
    }),
    status: z.enum(["pending", "running", "completed", "failed", "cancelled"]).openapi({
      description:
        "`cancelled`: the item had not started when its batch was cancelled (its credits were refunded). Spidra's SDK types leave it out of their item union; Spidra's API reference lists it.",
    }),
    result: z.unknown().openapi({
      description:
        "The extracted content (object for json, string for markdown); null until completed, and null when the result is served by URL only (`resultUrl`)",
    }),
    error: z.string().nullable().openapi({ description: "Why the item failed (a message), or null" }),
    errorCode: z.string().nullable().openapi({
      description:
        "The failure's machine code, or null. EXTRACTION_LIMIT: the page passed an extraction limit (the message names it and its value)",
    }),
    creditsUsed: z.number().int().openapi({
      description:
        "Credits charged in the item's current round: its price when it completed or failed with EXTRACTION_LIMIT (the work was done), else 0",
    }),
    attempts: z.number().int(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
    screenshotUrl: z.null().openapi({ description: "Always null: this service takes no screenshots" }),
    resultUrl: z.string().nullable().openapi({ description: "Where a completed item's stored result can be read" }),
    statusCode: z.number().int().nullable(),
    finalUrl: z.string().nullable(),
    durationMs: z.number().int().nullable(),
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
    "Reserves `total × creditsPerItem` credits up front and queues every URL. A URL that can never be fetched (a private, loopback or other special-purpose address, `localhost`, a single-label name) is refused with 400 naming it, and nothing is reserved. Every field Spidra documents is accepted and honoured, or refused with a 400 naming it (`OPTION_UNAVAILABLE` for what this deployment has no means for: a proxy pool, screenshots, AI where it is off, cookies without COOKIE_SECRET), before anything is reserved.",
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
    ...errorResponses(400, 401, 403, 413, 415, 422, 429, 503),
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
                outputFormat: z.enum(OUTPUT_FORMATS as [OutputFormat, ...OutputFormat[]]).openapi({
                  description: "json or markdown; document for a batch created through the Firecrawl surface (/v2)",
                }),
                scrapingChannel: z.literal("api").openapi({
                  description: "How the batch was submitted: always `api` here (the dashboard calls the same API)",
                }),
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
  summary: "Get a batch and its items",
  description: `Without \`cursor\` or \`limit\`, every item of the batch (at most MAX_URLS_PER_BATCH) and \`nextCursor: null\`: clients that never page (Spidra's SDK) get them all. Inline results stop after ${ALL_ITEMS_INLINE_BYTES} bytes; past that, and for any result over the executor's inline size, \`result\` is null and \`resultUrl\` serves it. With \`limit\` (at most ${LIMITS.itemsPageMax}) or \`cursor\` (then ${LIMITS.itemsPageDefault} by default), one page and the cursor of the next.`,
  security: [{ ApiKeyAuth: [] }],
  request: {
    params: BatchIdParams,
    query: z.object({ cursor: CursorSchema, limit: optionalPageQuery(LIMITS.itemsPageMax) }),
  },
  responses: {
    200: { description: "The batch", content: { "application/json": { schema: BatchSchema } } },
    ...errorResponses(400, 401, 403, 404, 410),
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
    ...errorResponses(401, 403, 404, 409, 410),
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
    ...errorResponses(400, 401, 403, 404, 409, 410, 503),
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
    ...errorResponses(401, 403, 404, 410),
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

/**
 * The body as the one create path takes it. Options this deployment has no means to honour
 * are refused here, naming the field, before anything is reserved.
 */
function toBatchRequest(body: z.output<typeof CreateBatchBody>): BatchRequest {
  if (body.useProxy === true)
    throw optionUnavailable("useProxy", "this deployment has no proxy pool; send false or leave it out.");
  if (body.proxyCountry !== undefined)
    throw optionUnavailable(
      "proxyCountry",
      "this deployment has no proxy pool to choose a country from; leave it out.",
    );
  for (const field of ["screenshot", "fullPageScreenshot"] as const) {
    if (body[field] === true)
      throw optionUnavailable(
        field,
        "this deployment has no browser to take screenshots with; send false or leave it out.",
      );
  }
  return {
    urls: body.urls,
    output: body.output,
    selectors: body.selectors,
    maxConcurrency: body.maxConcurrency,
    webhookUrl: body.webhookUrl,
    mainContentOnly: body.extractContentOnly === true,
    ai: requestedAi(body.prompt, body.schema),
    cookies: body.cookies ?? null,
  };
}

/**
 * Each listed batch's output format: from the account's index, or, for a batch indexed before
 * the index kept it, from its batch object (a few at a time; a batch gone meanwhile shows the default).
 */
async function outputFormats(env: Env, accountId: string, jobs: { batchId: string; output: string | null }[]) {
  return mapBounded(jobs, 8, async (j): Promise<OutputFormat> => {
    if (j.output !== null) return j.output as OutputFormat;
    const found = await batchObject(env, j.batchId).get(accountId, -1, 1);
    return found.ok ? (found.batch.output as OutputFormat) : DEFAULT_OUTPUT;
  });
}

/** The route definitions, for the typed client (src/client) to derive its types from. */
export const batchRoutes = { create, list, get, cancel, cancelAll, retry, result };
export type CreateBatchInput = z.input<typeof CreateBatchBody>;

export const batches = newRouter()
  .openapi(create, async (c) => {
    const body = c.req.valid("json");
    const key = c.req.valid("header")["idempotency-key"];
    // The cookies count towards idempotency through a keyed digest (create-batch.ts), never as given.
    const { cookies: _cookies, ...fingerprint } = body;
    const created = await createBatch(
      c.env,
      c.get("accountId"),
      toBatchRequest(body),
      key === undefined ? null : { key, request: fingerprint },
    );
    const location = `/api/batch/scrape/${created.batch.batchId}`;
    return c.json({ status: "queued" as const, batchId: created.batch.batchId, total: created.batch.totalUrls }, 202, {
      Location: location,
    });
  })
  .openapi(cancelAll, async (c) => {
    const r = await accountObject(c.env, c.get("accountId")).cancelAll();
    return c.json(
      {
        status: "cancelled" as const,
        batchesCancelled: r.batchesCancelled,
        batchesFailedToCancel: r.batchesFailedToCancel,
        cancelledItems: r.cancelledItems,
        creditsRefunded: r.creditsRefunded,
      },
      200,
    );
  })
  .openapi(list, async (c) => {
    const { page, limit } = c.req.valid("query");
    const { jobs, total } = await accountObject(c.env, c.get("accountId")).listBatches(page, limit);
    const outputs = await outputFormats(c.env, c.get("accountId"), jobs);
    return c.json(
      {
        jobs: jobs.map((j, i) => ({
          uuid: j.batchId,
          status: j.status,
          totalUrls: j.total,
          completedCount: j.completed,
          failedCount: j.failed,
          outputFormat: outputs[i]!,
          scrapingChannel: "api" as const,
          createdAt: new Date(j.createdAt).toISOString(),
          finishedAt: j.finishedAt === null ? null : new Date(j.finishedAt).toISOString(),
        })),
        pagination: { page, limit, total, totalPages: Math.ceil(total / limit) },
      },
      200,
    );
  })
  .openapi(get, async (c) => {
    const { cursor: rawCursor, limit } = c.req.valid("query");
    const cursor = rawCursor === undefined ? -1 : Number(rawCursor);
    // Neither given: every item (no silent truncation for clients that never page).
    const pageSize = limit ?? (rawCursor === undefined ? null : LIMITS.itemsPageDefault);
    // The batch object answers with the body, serialized (it keeps it for the next poll while
    // nothing changes): `{ ...batch, items, nextCursor }`, as the schema above says.
    const found = await readBatch(
      c,
      [{ raw: c.req.valid("param").batchId, what: "batch" }],
      async (claim, [batchId]) => await batchObject(c.env, batchId!).getJsonAs(claim, cursor, pageSize),
      async (accountId, [batchId]) => await batchObject(c.env, batchId!).getJson(accountId, cursor, pageSize),
    );
    return c.body(found.json, 200, { "content-type": "application/json" }) as never;
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
    const { batchId, itemId } = c.req.valid("param");
    const found = await readBatch(
      c,
      [
        { raw: batchId, what: "batch" },
        { raw: itemId, what: "item" },
      ],
      async (claim, [b, i]) => await batchObject(c.env, b!).resultLocationAs(claim, i!),
      async (accountId, [b, i]) => await batchObject(c.env, b!).resultLocation(accountId, i!),
    );
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
