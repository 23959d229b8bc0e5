/**
 * A batch's results as one download (NDJSON or CSV) and its receipt (how its credits moved,
 * row by row from the account's ledger). Both read the batch through the batch object's own
 * reads, so ownership (404 to anyone else) and retention (410 BATCH_EXPIRED) are the same as
 * for GET /api/batch/scrape/{batchId}.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { ItemView, Json } from "../../batch/views";
import { resultKey } from "../../domain/executor-contract";
import type { Env } from "../../env";
import { accountObject, batchObject, requireUuid, unwrap } from "../objects";
import { csvHeader, csvLine, ndjsonLine, resultLine } from "../results/lines";
import { type ItemPage, resultsStream } from "../results/stream";
import { CursorSchema, errorResponses, pageQuery } from "../schemas";
import { newRouter } from "../validation";

/** Items per read of the batch object: at most ~8 KB inline result each, so a page stays a few MB. */
export const RESULTS_PAGE_ITEMS = 250;
export const RECEIPT_PAGE_MAX = 1000;
const RESULT_STATUSES = ["completed", "failed", "cancelled"] as const;

const BatchIdParams = z.object({
  batchId: z.string().openapi({ param: { name: "batchId", in: "path" }, format: "uuid" }),
});

const ResultLineSchema = z
  .object({
    index: z.number().int().openapi({ description: "The item's position in the batch's `urls`, from 0" }),
    itemId: z.string().uuid(),
    customId: z.string().nullable(),
    url: z.string(),
    status: z.enum(["pending", "running", "completed", "failed", "cancelled"]),
    error: z
      .string()
      .nullable()
      .openapi({ description: "The failure's message, as on the batch read's items; null unless failed" }),
    errorCode: z
      .string()
      .nullable()
      .openapi({ description: "The failure's machine code (e.g. `HTTP_404`), as on the batch read's items" }),
    creditsUsed: z.number().int(),
    metadata: z.record(z.string(), z.unknown()).nullable(),
    result: z.unknown().openapi({
      description: "Parsed JSON (`output: json`) or the Markdown text (`output: markdown`); null unless completed",
    }),
  })
  .openapi("ResultLine");

const results = createRoute({
  method: "get",
  path: "/api/batch/scrape/{batchId}/results",
  tags: ["Batches"],
  summary: "Every item and its result, as one stream",
  description: [
    "One line per item, in input order (`index`), with your `customId` and `metadata`, the item's status, error,",
    "credits and its result (read from storage where stored). NDJSON (`application/x-ndjson`, one JSON object a line)",
    "by default; `format=csv` gives RFC 4180 CSV with `metadata` and `result` as JSON cells, and text cells that",
    "start with `= + - @`, a tab or CR prefixed with `'` (formula injection).",
    "Streams in constant memory, whatever the batch's size. Every line is an item: whether the batch had finished",
    "when the download began is in the `x-batch-complete` header (`false`: a running batch, lines show what exists",
    "so far, unfinished items as `pending` or `running`). After a cancel, cancelled items are `cancelled`.",
  ].join(" "),
  security: [{ ApiKeyAuth: [] }],
  request: {
    params: BatchIdParams,
    query: z.object({
      format: z.enum(["ndjson", "csv"]).default("ndjson").openapi({ description: "ndjson (default) or csv" }),
      status: z
        .enum(RESULT_STATUSES)
        .optional()
        .openapi({ description: "Only items in this state (completed, failed or cancelled)" }),
    }),
  },
  responses: {
    200: {
      description: "The stream of lines",
      headers: z.object({
        "x-batch-complete": z.enum(["true", "false"]).openapi({
          description: "Whether the batch had finished when the download began (false: more results may come)",
        }),
        "x-batch-status": z.string().openapi({ description: "The batch's status when the download began" }),
      }),
      content: {
        "application/x-ndjson": { schema: ResultLineSchema },
        "text/csv": {
          schema: z.string().openapi({
            description:
              "Header `index,itemId,customId,url,status,errorCode,errorMessage,creditsUsed,metadata,result`, then one row per item",
          }),
        },
      },
    },
    ...errorResponses(400, 401, 403, 404, 410),
  },
});

const ReceiptEntrySchema = z.object({
  id: z.number().int().openapi({ description: "The ledger row's id (as in GET /api/credits/ledger)" }),
  kind: z.enum(["grant", "reserve", "consume", "refund"]),
  amount: z.number().int(),
  itemId: z.string().nullable(),
  note: z.string().nullable(),
  idempotencyKey: z.string(),
  createdAt: z.number().int(),
});

const ReceiptSchema = z
  .object({
    batchId: z.string().uuid(),
    creditsPerItem: z.number().int(),
    reserved: z.number().int().openapi({ description: "Reserved at create and by each retry" }),
    charged: z.number().int().openapi({ description: "Consumed by completed items (and charged failures)" }),
    refunded: z
      .number()
      .int()
      .openapi({ description: "Given back for failed and cancelled items, and released holds" }),
    held: z.number().int().openapi({ description: "Still held by the account for items not finished" }),
    balanced: z.boolean().openapi({ description: "reserved = charged + refunded + held" }),
    settled: z.boolean().openapi({
      description:
        "Whether the ledger has caught up with the batch: false for the moment between an item finishing and its charge or refund reaching the account",
    }),
    batch: z
      .object({ creditsReserved: z.number().int(), creditsUsed: z.number().int(), creditsRefunded: z.number().int() })
      .openapi({ description: "The batch's own figures (the batch read's)" }),
    entries: z.array(ReceiptEntrySchema).openapi({ description: "The batch's ledger rows, oldest first" }),
    nextCursor: z.string().nullable(),
  })
  .openapi("Receipt");

const receipt = createRoute({
  method: "get",
  path: "/api/batch/scrape/{batchId}/receipt",
  tags: ["Batches"],
  summary: "How the batch's credits moved",
  description:
    "Totals (reserved = charged + refunded + held) and the ledger rows behind them, oldest first, a page at a time (`cursor`, `limit`).",
  security: [{ ApiKeyAuth: [] }],
  request: {
    params: BatchIdParams,
    query: z.object({ cursor: CursorSchema, limit: pageQuery(RECEIPT_PAGE_MAX, 100) }),
  },
  responses: {
    200: { description: "The receipt", content: { "application/json": { schema: ReceiptSchema } } },
    ...errorResponses(400, 401, 403, 404, 410),
  },
});

export const resultRoutes = { results, receipt };

export const batchResults = newRouter()
  .openapi(results, async (c) => {
    const batchId = requireUuid(c.req.valid("param").batchId, "batch");
    const { format, status } = c.req.valid("query");
    const accountId = c.get("accountId");
    const batch = batchObject(c.env, batchId);
    // Each page through the read GET uses: a batch that expires mid-way ends the stream with an error.
    const read = async (cursor: number) => unwrap(await batch.get(accountId, cursor, RESULTS_PAGE_ITEMS));
    const pageOf = (found: Awaited<ReturnType<typeof read>>): ItemPage => ({
      items: found.items,
      nextCursor: found.nextCursor === null ? null : Number(found.nextCursor),
    });
    const opened = await read(-1);
    const output = opened.batch.output;
    const csv = format === "csv";
    const body = resultsStream({
      first: pageOf(opened),
      page: async (cursor) => pageOf(await read(cursor)),
      resultOf: (item) => storedResult(c.env, batchId, output, item),
      keep: (item) => status === undefined || item.status === status,
      line: (item, result) => (csv ? csvLine : ndjsonLine)(resultLine(item, result)),
      head: csv ? csvHeader() : undefined,
    });
    return new Response(body, {
      status: 200,
      headers: {
        "content-type": csv ? "text/csv; charset=utf-8" : "application/x-ndjson; charset=utf-8",
        "content-disposition": `attachment; filename="batch-${batchId}.${csv ? "csv" : "jsonl"}"`,
        "cache-control": "no-store",
        "x-batch-complete": String(opened.batch.finishedAt !== null),
        "x-batch-status": opened.batch.status,
      },
    }) as never;
  })
  .openapi(receipt, async (c) => {
    const batchId = requireUuid(c.req.valid("param").batchId, "batch");
    const { cursor, limit } = c.req.valid("query");
    const accountId = c.get("accountId");
    // Ownership and retention first, through the batch's own read (one item: the least it reads).
    const { batch } = unwrap(await batchObject(c.env, batchId).get(accountId, -1, 1));
    const page = await accountObject(c.env, accountId).batchReceipt(
      batchId,
      cursor === undefined ? null : Number(cursor),
      limit,
    );
    const { reserved, charged, refunded } = page.totals;
    // The account forgets a batch only at retention, and then the read above answered 410.
    const held = page.totals.held ?? reserved - charged - refunded;
    return c.json(
      {
        batchId,
        creditsPerItem: batch.creditsPerItem,
        reserved,
        charged,
        refunded,
        held,
        balanced: reserved === charged + refunded + held,
        // The ledger also has retry holds released unused (reserved, then refunded whole),
        // which the batch's own figures leave out: they differ from them by the same amount.
        settled: batch.creditsUsed === charged && reserved - batch.creditsReserved === refunded - batch.creditsRefunded,
        batch: {
          creditsReserved: batch.creditsReserved,
          creditsUsed: batch.creditsUsed,
          creditsRefunded: batch.creditsRefunded,
        },
        entries: page.entries,
        nextCursor: page.nextCursor === null ? null : String(page.nextCursor),
      },
      200,
    );
  });

/**
 * An item's result for the download: inline on its view when small, else read from R2 (one
 * body at a time: the stream awaits each). A completed item whose stored result is gone reads as null.
 */
async function storedResult(env: Env, batchId: string, output: string, item: ItemView): Promise<Json | null> {
  if (item.status !== "completed") return null;
  if (item.result !== null) return item.result;
  if (item.resultUrl === null) return null;
  const object = await env.RESULTS.get(resultKey(batchId, item.uuid));
  if (!object) return null;
  const text = await object.text();
  if (output !== "json") return text;
  try {
    return JSON.parse(text) as Json;
  } catch {
    return text;
  }
}
