/** The caller's credits and ledger. */
import { createRoute, z } from "@hono/zod-openapi";
import { LIMITS } from "../../domain/limits";
import { accountObject } from "../objects";
import { CursorSchema, errorResponses, pageQuery } from "../schemas";
import { newRouter } from "../validation";

export const BalancesSchema = z
  .object({
    balance: z.number().int().openapi({ description: "Credits available to spend" }),
    reserved: z.number().int().openapi({ description: "Credits held for items not finished yet" }),
    used: z.number().int().openapi({ description: "Credits consumed by completed items" }),
    refunded: z
      .number()
      .int()
      .openapi({ description: "Credits returned from reservations (cancelled or failed items)" }),
    granted: z.number().int().openapi({ description: "All credits ever granted: granted = balance + reserved + used" }),
  })
  .openapi("Credits");

const LedgerEntrySchema = z
  .object({
    id: z.number().int(),
    kind: z.enum(["grant", "reserve", "consume", "refund"]),
    amount: z.number().int(),
    batchId: z.string().nullable(),
    itemId: z.string().nullable(),
    note: z.string().nullable(),
    idempotencyKey: z.string(),
    balanceAfter: z.number().int(),
    reservedAfter: z.number().int(),
    createdAt: z.string(),
  })
  .openapi("LedgerEntry");

const getCredits = createRoute({
  method: "get",
  path: "/api/credits",
  tags: ["Credits"],
  summary: "Your credit balance",
  security: [{ ApiKeyAuth: [] }],
  responses: {
    200: { description: "Balances", content: { "application/json": { schema: BalancesSchema } } },
    ...errorResponses(401, 403),
  },
});

const getLedger = createRoute({
  method: "get",
  path: "/api/credits/ledger",
  tags: ["Credits"],
  summary: "Your credit ledger, newest first",
  security: [{ ApiKeyAuth: [] }],
  request: {
    query: z.object({ cursor: CursorSchema, limit: pageQuery(LIMITS.ledgerPageMax, LIMITS.ledgerPageDefault) }),
  },
  responses: {
    200: {
      description: "A page of ledger entries",
      content: {
        "application/json": {
          schema: z.object({ entries: z.array(LedgerEntrySchema), nextCursor: z.string().nullable() }),
        },
      },
    },
    ...errorResponses(400, 401, 403),
  },
});

/** The route definitions, for the typed client (src/client). */
export const creditRoutes = { getCredits, getLedger };

export const credits = newRouter()
  .openapi(getCredits, async (c) => {
    const b = await accountObject(c.env, c.get("accountId")).getCredits();
    return c.json(
      { balance: b.balance, reserved: b.reserved, used: b.used, refunded: b.refunded, granted: b.granted },
      200,
    );
  })
  .openapi(getLedger, async (c) => {
    const { cursor, limit } = c.req.valid("query");
    const page = await accountObject(c.env, c.get("accountId")).listLedger(
      cursor === undefined ? null : Number(cursor),
      limit,
    );
    return c.json(
      {
        entries: page.entries.map((e) => ({ ...e, createdAt: new Date(e.createdAt).toISOString() })),
        nextCursor: page.nextCursor === null ? null : String(page.nextCursor),
      },
      200,
    );
  });
