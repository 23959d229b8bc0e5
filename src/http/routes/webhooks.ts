/** Webhooks: the signing secret, and every delivery with its outcome. */
import { createRoute, z } from "@hono/zod-openapi";
import { LIMITS } from "../../domain/limits";
import { accountObject } from "../objects";
import { CursorSchema, errorResponses, pageQuery } from "../schemas";
import { newRouter } from "../validation";
import { iso } from "../../batch/views";

const DeliverySchema = z
  .object({
    eventId: z.string(),
    type: z.string(),
    batchId: z.string(),
    state: z.enum(["pending", "delivered", "failed"]),
    attempts: z.number().int(),
    lastStatus: z.number().int().nullable(),
    lastError: z.string().nullable(),
    createdAt: z.string(),
    deliveredAt: z.string().nullable(),
    nextAttemptAt: z.string().nullable(),
  })
  .openapi("WebhookDelivery");

const deliveries = createRoute({
  method: "get",
  path: "/api/webhooks/deliveries",
  tags: ["Webhooks"],
  summary: "Webhook deliveries and their outcomes, newest first",
  security: [{ ApiKeyAuth: [] }],
  request: { query: z.object({ cursor: CursorSchema, limit: pageQuery(LIMITS.ledgerPageMax, LIMITS.ledgerPageDefault) }) },
  responses: {
    200: {
      description: "A page of deliveries",
      content: { "application/json": { schema: z.object({ deliveries: z.array(DeliverySchema), nextCursor: z.string().nullable() }) } },
    },
    ...errorResponses(400, 401, 403),
  },
});

const secret = createRoute({
  method: "get",
  path: "/api/webhooks/secret",
  tags: ["Webhooks"],
  summary: "The secret that signs your webhook deliveries",
  description:
    "Each delivery carries `x-webhook-id`, `x-webhook-timestamp` and `x-webhook-signature: v1=<hex HMAC-SHA256(secret, timestamp + '.' + body)>`.",
  security: [{ ApiKeyAuth: [] }],
  responses: {
    200: { description: "The secret", content: { "application/json": { schema: z.object({ secret: z.string(), scheme: z.literal("v1") }) } } },
    ...errorResponses(401, 403),
  },
});

export const webhooks = newRouter()
  .openapi(deliveries, async (c) => {
    const { cursor, limit } = c.req.valid("query");
    const page = await accountObject(c.env, c.get("accountId")).listWebhookDeliveries(cursor === undefined ? null : Number(cursor), limit);
    return c.json(
      {
        deliveries: page.deliveries.map((d) => ({
          ...d,
          createdAt: iso(d.createdAt)!,
          deliveredAt: iso(d.deliveredAt),
          nextAttemptAt: iso(d.nextAttemptAt),
        })),
        nextCursor: page.nextCursor === null ? null : String(page.nextCursor),
      },
      200,
    );
  })
  .openapi(secret, async (c) => {
    return c.json({ secret: await accountObject(c.env, c.get("accountId")).webhookSecret(), scheme: "v1" as const }, 200);
  });
