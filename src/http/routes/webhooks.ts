/** Webhooks: the signing secret and its rotation, and every delivery with its outcome. */
import { createRoute, z } from "@hono/zod-openapi";
import { LIMITS } from "../../domain/limits";
import { DEFAULT_OVERLAP_SECONDS, MAX_OVERLAP_SECONDS } from "../../webhooks/secrets";
import { accountObject, unwrap } from "../objects";
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
  request: {
    query: z.object({ cursor: CursorSchema, limit: pageQuery(LIMITS.ledgerPageMax, LIMITS.ledgerPageDefault) }),
  },
  responses: {
    200: {
      description: "A page of deliveries",
      content: {
        "application/json": {
          schema: z.object({ deliveries: z.array(DeliverySchema), nextCursor: z.string().nullable() }),
        },
      },
    },
    ...errorResponses(400, 401, 403),
  },
});

const SecretSchema = z
  .object({
    secret: z.string().openapi({ example: "whsec_3q2-7wQ0b1nJ8kR0c5m3vX9yZ1aB4dE6fG8hJ0kL2mN" }),
    scheme: z.literal("v1"),
    previousSecretExpiresAt: z.string().nullable().openapi({
      description:
        "Until then the secret before the last rotation also signs every delivery; null when only `secret` signs.",
    }),
  })
  .openapi("WebhookSecret");

const SIGNATURE_DESCRIPTION =
  "Each delivery carries `x-webhook-id`, `x-webhook-timestamp` and `x-webhook-signature`: a comma-separated list of " +
  "`v1=<hex HMAC-SHA256(secret, timestamp + '.' + body)>`, one entry per secret that signs (two during a rotation's overlap, the newest first). " +
  "Accept a delivery when any `v1` entry matches. See docs/webhooks.md.";

const secret = createRoute({
  method: "get",
  path: "/api/webhooks/secret",
  tags: ["Webhooks"],
  summary: "The secret that signs your webhook deliveries",
  description: `${SIGNATURE_DESCRIPTION} Shows the current secret on every call (made on the first).`,
  security: [{ ApiKeyAuth: [] }],
  responses: {
    200: { description: "The current secret", content: { "application/json": { schema: SecretSchema } } },
    ...errorResponses(401, 403),
  },
});

const RotateBody = z
  .object({
    overlapSeconds: z
      .number()
      .int("must be a whole number")
      .min(0, "must be at least 0")
      .max(MAX_OVERLAP_SECONDS, `must be at most ${MAX_OVERLAP_SECONDS} (7 days)`)
      .optional()
      .openapi({ description: "How long the old secret keeps signing.", example: DEFAULT_OVERLAP_SECONDS }),
  })
  .strict();

const rotate = createRoute({
  method: "post",
  path: "/api/webhooks/secret/rotate",
  tags: ["Webhooks"],
  summary: "Replace the webhook signing secret, with an overlap in which both sign",
  description:
    `${SIGNATURE_DESCRIPTION} For \`overlapSeconds\` (default ${DEFAULT_OVERLAP_SECONDS}, 0 to stop the old secret at once) every delivery, ` +
    "retries of earlier events included, is signed with the new secret and the old one; then with the new one only. " +
    "Rotating again during an overlap ends the older secret at once. Rate limited per API key.",
  security: [{ ApiKeyAuth: [] }],
  request: { body: { content: { "application/json": { schema: RotateBody } }, required: false } },
  responses: {
    200: { description: "The new secret", content: { "application/json": { schema: SecretSchema } } },
    ...errorResponses(400, 401, 403, 409, 413, 415, 429),
  },
});

export const webhooks = newRouter()
  .openapi(deliveries, async (c) => {
    const { cursor, limit } = c.req.valid("query");
    const page = await accountObject(c.env, c.get("accountId")).listWebhookDeliveries(
      cursor === undefined ? null : Number(cursor),
      limit,
    );
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
    const current = await accountObject(c.env, c.get("accountId")).webhookSecret();
    c.header("cache-control", "no-store"); // a secret: no cache keeps a copy
    return c.json(
      { secret: current.secret, scheme: "v1" as const, previousSecretExpiresAt: iso(current.previousUntil) },
      200,
    );
  })
  .openapi(rotate, async (c) => {
    const overlapSeconds = c.req.valid("json")?.overlapSeconds ?? DEFAULT_OVERLAP_SECONDS;
    const rotated = unwrap(await accountObject(c.env, c.get("accountId")).rotateWebhookSecret(overlapSeconds * 1000));
    c.header("cache-control", "no-store");
    return c.json(
      { secret: rotated.secret, scheme: "v1" as const, previousSecretExpiresAt: iso(rotated.previousUntil) },
      200,
    );
  });
