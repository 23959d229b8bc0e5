/**
 * A Firecrawl-compatible surface (/v2/batch/scrape, Firecrawl's v2 API and its SDKs) over the
 * same batches: created on the one create path, read, cancelled and charged exactly as on
 * /api. `Authorization: Bearer <api key>`; errors in Firecrawl's `{ success: false, error }`.
 * The mapping, the credits and the differences: docs/firecrawl.md.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { BatchView } from "../../batch/views";
import { retentionMs } from "../../domain/retention-policy";
import type { BatchStatus } from "../../domain/states";
import type { Env } from "../../env";
import { aiAvailable } from "../../domain/ai-extraction";
import { createBatch } from "../create-batch";
import { ApiError } from "../errors";
import { requireApiKey } from "../auth";
import { toBatchRequest } from "../firecrawl/create-request";
import { documentPage } from "../firecrawl/documents";
import { firecrawlError } from "../firecrawl/envelope";
import { FirecrawlCreateBody, FirecrawlDocument, FirecrawlError } from "../firecrawl/schemas";
import { batchObject, requireUuid, unwrap } from "../objects";
import { rateLimit } from "../rate-limit";
import { CursorSchema, errorResponsesWith, IdempotencyKeyHeader } from "../schemas";
import { newRouter } from "../validation";
import { urlsWithinLimit } from "./batches";

/** Firecrawl's status words; "scraping" until every item has settled. */
export const FIRECRAWL_STATUS: Record<BatchStatus, "scraping" | "completed" | "failed" | "cancelled"> = {
  pending: "scraping",
  running: "scraping",
  completed: "completed",
  failed: "failed",
  cancelled: "cancelled",
};

/** Failed items the errors route reads per call to the batch object. */
const ERRORS_PER_READ = 1000;

const security = [{ ApiKeyBearer: [] }];
const tags = ["Firecrawl-compatible"];
const errors = <const S extends number>(...statuses: S[]) => errorResponsesWith(FirecrawlError, ...statuses);
const IdParams = z.object({ id: z.string().openapi({ param: { name: "id", in: "path" }, format: "uuid" }) });

const create = createRoute({
  method: "post",
  path: "/v2/batch/scrape",
  middleware: [urlsWithinLimit] as const,
  tags,
  summary: "Start a batch scrape (Firecrawl v2)",
  description:
    "The same batch as POST /api/batch/scrape: credits reserved up front (1 per URL), one ledger, race-free cancel. Options are honoured or refused with 400 naming them (docs/firecrawl.md).",
  security,
  request: {
    headers: z.object({ "x-idempotency-key": IdempotencyKeyHeader }),
    body: { content: { "application/json": { schema: FirecrawlCreateBody } }, required: true },
  },
  responses: {
    200: {
      description: "Batch started",
      content: {
        "application/json": {
          schema: z.object({
            success: z.literal(true),
            id: z.string().uuid(),
            url: z.string(),
            invalidURLs: z.array(z.string()).optional(),
          }),
        },
      },
    },
    ...errors(400, 401, 402, 403, 413, 415, 422, 429, 503),
  },
});

const status = createRoute({
  method: "get",
  path: "/v2/batch/scrape/{id}",
  tags,
  summary: "Get a batch scrape's status and documents (Firecrawl v2)",
  description:
    "Documents of completed pages, in order; `next` gives the following page (FIRECRAWL_PAGE_SIZE documents, about FIRECRAWL_PAGE_BYTES bytes). Failed pages are listed by /errors.",
  security,
  request: { params: IdParams, query: z.object({ cursor: CursorSchema }) },
  responses: {
    200: {
      description: "The batch and a page of its documents",
      content: {
        "application/json": {
          schema: z.object({
            success: z.literal(true),
            status: z.enum(["scraping", "completed", "failed", "cancelled"]),
            total: z.number().int(),
            completed: z.number().int(),
            creditsUsed: z.number().int(),
            expiresAt: z.string(),
            next: z.string().nullable(),
            data: z.array(FirecrawlDocument),
          }),
        },
      },
    },
    ...errors(400, 401, 403, 404, 410, 429, 503),
  },
});

const cancel = createRoute({
  method: "delete",
  path: "/v2/batch/scrape/{id}",
  tags,
  summary: "Cancel a batch scrape (Firecrawl v2)",
  description:
    "Pages not started are cancelled and refunded; pages already running finish and are charged. A batch already finished answers 409.",
  security,
  request: { params: IdParams },
  responses: {
    200: {
      description: "Cancelled",
      content: {
        "application/json": {
          schema: z.object({
            success: z.literal(true),
            status: z.literal("cancelled"),
            cancelledItems: z.number().int(),
            creditsRefunded: z.number().int(),
          }),
        },
      },
    },
    ...errors(401, 403, 404, 409, 410, 429, 503),
  },
});

const errorsRoute = createRoute({
  method: "get",
  path: "/v2/batch/scrape/{id}/errors",
  tags,
  summary: "Get a batch scrape's failed pages (Firecrawl v2)",
  security,
  request: { params: IdParams },
  responses: {
    200: {
      description: "Failed pages",
      content: {
        "application/json": {
          schema: z.object({
            errors: z.array(
              z.object({
                id: z.string(),
                timestamp: z.string().optional(),
                url: z.string(),
                code: z.string(),
                error: z.string(),
              }),
            ),
            robotsBlocked: z.array(z.string()).openapi({ description: "Always empty: robots.txt is not consulted." }),
          }),
        },
      },
    },
    ...errors(401, 403, 404, 410, 429, 503),
  },
});

function batchUrl(requestUrl: string, batchId: string): string {
  return `${new URL(requestUrl).origin}/v2/batch/scrape/${batchId}`;
}

/** When the batch and its results go: finishedAt + RETENTION_DAYS; not before now + that while it runs. */
function expiresAt(batch: BatchView, env: Env): string {
  const from = batch.finishedAt === null ? Date.now() : Date.parse(batch.finishedAt);
  return new Date(from + retentionMs(env)).toISOString();
}

export const firecrawl = newRouter();
firecrawl.use("/v2/*", requireApiKey());
firecrawl.on("POST", "/v2/batch/scrape", rateLimit("CREATE_LIMITER"));
firecrawl.on("DELETE", "/v2/batch/scrape/:id", rateLimit("CANCEL_LIMITER"));
firecrawl.on("GET", "/v2/*", rateLimit("READ_LIMITER"));

firecrawl.openapi(create, async (c) => {
  const body = c.req.valid("json");
  const key = c.req.valid("header")["x-idempotency-key"];
  const mapped = toBatchRequest(body, c.env.ALLOW_LOOPBACK_TARGETS === "true", aiAvailable(c.env));
  const idempotency = key === undefined ? null : { key, request: mapped.request };
  const created = await createBatch(c.env, c.get("accountId"), mapped.request, idempotency);
  const id = created.batch.batchId;
  return c.json(
    {
      success: true as const,
      id,
      url: batchUrl(c.req.url, id),
      ...(mapped.invalidURLs ? { invalidURLs: mapped.invalidURLs } : {}),
    },
    200,
  );
});

firecrawl.openapi(status, async (c) => {
  const id = requireUuid(c.req.valid("param").id, "batch scrape job");
  const cursor = c.req.valid("query").cursor;
  const page = await documentPage(c.env, c.get("accountId"), id, cursor === undefined ? -1 : Number(cursor));
  const b = page.batch;
  return c.json(
    {
      success: true as const,
      status: FIRECRAWL_STATUS[b.status],
      total: b.totalUrls,
      completed: b.completedCount,
      creditsUsed: b.creditsUsed,
      expiresAt: expiresAt(b, c.env),
      next: page.nextCursor === null ? null : `${batchUrl(c.req.url, id)}?cursor=${page.nextCursor}`,
      data: page.documents,
    },
    200,
  );
});

firecrawl.openapi(cancel, async (c) => {
  const id = requireUuid(c.req.valid("param").id, "batch scrape job");
  const result = await batchObject(c.env, id).cancel(c.get("accountId"));
  if (!result.ok && result.code === "ALREADY_TERMINAL") {
    throw new ApiError(
      409,
      "ALREADY_TERMINAL",
      `Batch scrape job already finished; nothing to cancel. ${result.message}`,
    );
  }
  const done = unwrap(result);
  return c.json(
    {
      success: true as const,
      status: "cancelled" as const,
      cancelledItems: done.cancelledItems,
      creditsRefunded: done.creditsRefunded,
    },
    200,
  );
});

firecrawl.openapi(errorsRoute, async (c) => {
  const id = requireUuid(c.req.valid("param").id, "batch scrape job");
  const stub = batchObject(c.env, id);
  const list: { id: string; timestamp?: string; url: string; code: string; error: string }[] = [];
  let cursor = -1;
  do {
    const found = unwrap(await stub.itemsIn(c.get("accountId"), ["failed"], cursor, ERRORS_PER_READ));
    for (const { item } of found.entries) {
      list.push({
        id: item.uuid,
        ...(item.finishedAt ? { timestamp: item.finishedAt } : {}),
        url: item.url,
        code: item.errorCode ?? "FAILED",
        error: item.error ?? "The page failed.",
      });
    }
    cursor = found.nextCursor === null ? -1 : Number(found.nextCursor);
  } while (cursor !== -1);
  return c.json({ errors: list, robotsBlocked: [] }, 200);
});

/** The methods each path of this surface answers, for a 405 in its envelope. */
const ALLOWED: [RegExp, string][] = [
  [/^\/v2\/batch\/scrape$/, "POST"],
  [/^\/v2\/batch\/scrape\/[^/]+$/, "GET, DELETE"],
  [/^\/v2\/batch\/scrape\/[^/]+\/errors$/, "GET"],
];

// Anything else under /v2/ is a wrong method (405) or not found, in this surface's envelope.
firecrawl.all("/v2/*", (c) => {
  const allowed = ALLOWED.find(([path]) => path.test(c.req.path))?.[1];
  if (allowed)
    throw new ApiError(405, "METHOD_NOT_ALLOWED", `Method ${c.req.method} is not allowed here; use ${allowed}.`, {
      Allow: allowed,
    });
  throw new ApiError(404, "NOT_FOUND", "Route not found.");
});

firecrawl.onError(firecrawlError);
