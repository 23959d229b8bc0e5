/**
 * A SerpWow-compatible surface over the same batches: same paths, `?api_key=` in the query
 * string, SerpWow's `{ request_info, … }` envelope. Stopping goes through the same batch
 * object and per-item rule as DELETE /api/batch/scrape/:id (every item that never started
 * is refunded, which is never less than SerpWow's refund of a batch that never started).
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { BatchView } from "../../batch/views";
import type { BatchStatus } from "../../domain/states";
import type { Env } from "../../env";
import { requireApiKey } from "../auth";
import { isSerpWowBatchRead, readBatch } from "../batch-reads";
import { rateLimit } from "../rate-limit";
import { ApiError, handleError } from "../errors";
import { accountObject, batchObject, requireUuid, unwrap } from "../objects";
import { BatchStatusSchema, errorResponsesWith } from "../schemas";
import { newRouter } from "../validation";

const PAGE_SIZE = 10;

/** SerpWow's status words; the precise state stays in `state`. */
export const SERPWOW_STATUS: Record<BatchStatus, "queued" | "running" | "idle"> = {
  pending: "queued",
  running: "running",
  completed: "idle",
  failed: "idle",
  cancelled: "idle",
};

const RequestInfo = z.object({ success: z.boolean(), message: z.string().optional() });
const ErrorEnvelope = z.object({ request_info: RequestInfo }).openapi("SerpWowError");

const SerpBatch = z
  .object({
    id: z.string(),
    name: z.string(),
    status: z.enum(["queued", "running", "idle"]),
    state: BatchStatusSchema,
    created_at: z.string(),
    last_run: z.string().nullable(),
    finished_at: z.string().nullable(),
    searches_total_count: z.number().int(),
    searches_completed_count: z.number().int(),
    searches_failed_count: z.number().int(),
    searches_cancelled_count: z.number().int(),
    credits_required: z.number().int().optional(),
    credits_used: z.number().int().optional(),
    credits_refunded: z.number().int().optional(),
  })
  .openapi("SerpWowBatch");

function errors<const S extends number>(...statuses: S[]) {
  return errorResponsesWith(ErrorEnvelope, ...statuses);
}

/** Either scheme works here: `?api_key=` (SerpWow's way) or the x-api-key header. */
const security: Record<string, string[]>[] = [{ ApiKeyQuery: [] }, { ApiKeyAuth: [] }];

const ApiKeyQuery = z.object({
  api_key: z.string().optional().openapi({ description: "Your API key (the x-api-key header also works)" }),
});
const BatchParams = z.object({
  batchId: z.string().openapi({ param: { name: "batchId", in: "path" }, format: "uuid" }),
});

/** The batch as SerpWow shows it: its name is its id (batches here are not named). */
function serpBatch(b: BatchView) {
  return {
    id: b.batchId,
    name: b.batchId,
    status: SERPWOW_STATUS[b.status],
    state: b.status,
    created_at: b.createdAt,
    last_run: b.startedAt,
    finished_at: b.finishedAt,
    searches_total_count: b.totalUrls,
    searches_completed_count: b.completedCount,
    searches_failed_count: b.failedCount,
    searches_cancelled_count: b.cancelledCount,
    credits_required: b.creditsReserved,
    credits_used: b.creditsUsed,
    credits_refunded: b.creditsRefunded,
  };
}

const stop = createRoute({
  method: "get",
  path: "/live/batches/{batchId}/stop",
  tags: ["SerpWow-compatible"],
  summary: "Stop a batch (SerpWow)",
  security,
  request: { params: BatchParams, query: ApiKeyQuery },
  responses: {
    200: {
      description: "Stopped",
      content: {
        "application/json": {
          schema: z.object({
            request_info: RequestInfo,
            batch: SerpBatch,
            cancelled_items: z.number().int(),
            credits_refunded: z.number().int(),
          }),
        },
      },
    },
    ...errors(400, 401, 403, 404, 410, 429),
  },
});

// SerpWow's name for it; ours (the account's fan-out) is cancelAll.
const stopAll = createRoute({
  method: "get",
  path: "/live/batches/stopall",
  tags: ["SerpWow-compatible"],
  summary: "Stop every queued or running batch (SerpWow)",
  security,
  request: { query: ApiKeyQuery },
  responses: {
    200: {
      description: "Stopped",
      content: {
        "application/json": {
          schema: z.object({
            request_info: RequestInfo,
            batches_stopped: z.number().int(),
            batches_failed_to_stop: z.number().int(),
          }),
        },
      },
    },
    ...errors(401, 403, 429),
  },
});

const getOne = createRoute({
  method: "get",
  path: "/live/batches/{batchId}",
  tags: ["SerpWow-compatible"],
  summary: "Get a batch (SerpWow)",
  security,
  request: { params: BatchParams, query: ApiKeyQuery },
  responses: {
    200: {
      description: "The batch",
      content: { "application/json": { schema: z.object({ request_info: RequestInfo, batch: SerpBatch }) } },
    },
    ...errors(401, 403, 404, 410, 429),
  },
});

const list = createRoute({
  method: "get",
  path: "/live/batches",
  tags: ["SerpWow-compatible"],
  summary: "List batches, newest first (SerpWow)",
  security,
  request: {
    query: ApiKeyQuery.extend({
      page: z.coerce.number().int("must be a whole number").min(1, "must be at least 1").max(1_000_000).default(1),
    }),
  },
  responses: {
    200: {
      description: "A page of batches",
      content: {
        "application/json": {
          schema: z.object({
            request_info: RequestInfo,
            total_count: z.number().int(),
            total_pages: z.number().int(),
            current_page: z.number().int(),
            count_this_page: z.number().int(),
            batches: z.array(SerpBatch),
          }),
        },
      },
    },
    ...errors(400, 401, 403, 429),
  },
});

async function loadBatch(env: Env, accountId: string, rawId: string): Promise<BatchView> {
  const batchId = requireUuid(rawId, "batch");
  return unwrap(await batchObject(env, batchId).get(accountId, -1, 1)).batch;
}

export const serpwow = newRouter();
serpwow.use("/live/*", requireApiKey({ allowQueryKey: true, batchRead: isSerpWowBatchRead }));
serpwow.use("/live/batches/stopall", rateLimit("CANCEL_LIMITER"));
serpwow.use("/live/batches/:batchId/stop", rateLimit("CANCEL_LIMITER"));
// Reads last: stopall also matches /live/batches/:batchId, and one limiter counts a request.
serpwow.use("/live/batches", rateLimit("READ_LIMITER"));
// GET /live/batches/{id} answered by the batch object is limited by it (src/batch/poll-budget.ts).
serpwow.use("/live/batches/:batchId", rateLimit("READ_LIMITER", { exceptPolls: true }));
// stopall before :batchId, so the static path wins.
serpwow.openapi(stopAll, async (c) => {
  const r = await accountObject(c.env, c.get("accountId")).cancelAll();
  return c.json(
    {
      request_info: { success: true, message: `${r.batchesCancelled} Batches stopped` },
      batches_stopped: r.batchesCancelled,
      batches_failed_to_stop: r.batchesFailedToCancel,
    },
    200,
  );
});
serpwow.openapi(stop, async (c) => {
  const batchId = requireUuid(c.req.valid("param").batchId, "batch");
  const result = await batchObject(c.env, batchId).cancel(c.get("accountId"));
  if (!result.ok && result.code === "ALREADY_TERMINAL") {
    const batch = await loadBatch(c.env, c.get("accountId"), batchId);
    throw new ApiError(
      400,
      "NOT_ACTIVE",
      `Batch can only be stopped when queued or running; it is idle (${batch.status}).`,
    );
  }
  const done = unwrap(result);
  return c.json(
    {
      request_info: {
        success: true,
        message: `Batch stopped: ${done.cancelledItems} searches cancelled, ${done.creditsRefunded} credits refunded`,
      },
      batch: serpBatch(done.batch),
      cancelled_items: done.cancelledItems,
      credits_refunded: done.creditsRefunded,
    },
    200,
  );
});
serpwow.openapi(getOne, async (c) => {
  const { batch } = await readBatch(
    c,
    [{ raw: c.req.valid("param").batchId, what: "batch" }],
    async (claim, [batchId]) => await batchObject(c.env, batchId!).getAs(claim, -1, 1),
    async (accountId, [batchId]) => await batchObject(c.env, batchId!).get(accountId, -1, 1),
  );
  return c.json({ request_info: { success: true }, batch: serpBatch(batch) }, 200);
});
serpwow.openapi(list, async (c) => {
  const { page } = c.req.valid("query");
  const { jobs, total } = await accountObject(c.env, c.get("accountId")).listBatches(page, PAGE_SIZE);
  const batches = jobs.map((j) => ({
    id: j.batchId,
    name: j.batchId,
    status: SERPWOW_STATUS[j.status],
    state: j.status,
    created_at: new Date(j.createdAt).toISOString(),
    last_run: null,
    finished_at: j.finishedAt === null ? null : new Date(j.finishedAt).toISOString(),
    searches_total_count: j.total,
    searches_completed_count: j.completed,
    searches_failed_count: j.failed,
    searches_cancelled_count: j.cancelled,
  }));
  return c.json(
    {
      request_info: { success: true },
      total_count: total,
      total_pages: Math.ceil(total / PAGE_SIZE),
      current_page: page,
      count_this_page: batches.length,
      batches,
    },
    200,
  );
});

// Anything else under /live/ is not found, in this surface's envelope.
serpwow.all("/live/*", () => {
  throw new ApiError(404, "NOT_FOUND", "Route not found.");
});

/** Errors here keep their status but speak SerpWow: `{ request_info: { success: false, message } }`. */
serpwow.onError(async (err, c) => {
  const res = await handleError(err, c);
  const body = (await res.json()) as { message?: string };
  const headers = Object.fromEntries(
    [...res.headers].filter(([name]) => name !== "content-length" && name !== "content-type"),
  );
  return c.json({ request_info: { success: false, message: body.message ?? "Error" } }, res.status as 400, headers);
});
