/** Operator API (bearer ADMIN_TOKEN): accounts, credits and API keys. */
import { createRoute, z } from "@hono/zod-openapi";
import { generateApiKey } from "../../account/keys";
import { requireMacSecret } from "../auth";
import { ApiError } from "../errors";
import { accountObject, registryObject, requireUuid, unwrap } from "../objects";
import { errorResponses, IdempotencyKeyHeader } from "../schemas";
import { newRouter } from "../validation";
import { BalancesSchema } from "./credits";
import { iso } from "../../batch/views";

const MAX_GRANT = 1_000_000_000;

const AccountIdParams = z.object({
  accountId: z.string().openapi({ param: { name: "accountId", in: "path" }, format: "uuid" }),
});
const KeyParams = AccountIdParams.extend({ keyId: z.string().openapi({ param: { name: "keyId", in: "path" } }) });

const createAccount = createRoute({
  method: "post",
  path: "/admin/accounts",
  tags: ["Admin"],
  summary: "Create an account and its first API key (shown once)",
  security: [{ AdminToken: [] }],
  request: {
    body: {
      content: {
        "application/json": {
          schema: z
            .object({
              name: z.string().min(1).max(200).optional(),
              credits: z.number().int("must be a whole number").min(0).max(MAX_GRANT).optional(),
            })
            .strict(),
        },
      },
      required: false,
    },
  },
  responses: {
    201: {
      description: "Account created",
      content: {
        "application/json": {
          schema: z.object({
            accountId: z.string().uuid(),
            keyId: z.string(),
            apiKey: z.string(),
            credits: BalancesSchema,
          }),
        },
      },
    },
    ...errorResponses(400, 401, 403, 413, 415, 503),
  },
});

const getAccount = createRoute({
  method: "get",
  path: "/admin/accounts/{accountId}",
  tags: ["Admin"],
  summary: "An account's credits and keys (never the keys themselves)",
  security: [{ AdminToken: [] }],
  request: { params: AccountIdParams },
  responses: {
    200: {
      description: "The account",
      content: {
        "application/json": {
          schema: z.object({
            accountId: z.string(),
            name: z.string().nullable(),
            createdAt: z.string(),
            credits: BalancesSchema,
            keys: z.array(
              z.object({
                keyId: z.string(),
                createdAt: z.string(),
                expiresAt: z.string().nullable(),
                revokedAt: z.string().nullable(),
              }),
            ),
          }),
        },
      },
    },
    ...errorResponses(401, 403, 404),
  },
});

const grantCredits = createRoute({
  method: "post",
  path: "/admin/accounts/{accountId}/credits",
  tags: ["Admin"],
  summary: "Grant credits (idempotent with Idempotency-Key)",
  security: [{ AdminToken: [] }],
  request: {
    params: AccountIdParams,
    headers: z.object({ "idempotency-key": IdempotencyKeyHeader }),
    body: {
      content: {
        "application/json": {
          schema: z.object({ amount: z.number().int("must be a whole number").min(1).max(MAX_GRANT) }).strict(),
        },
      },
      required: true,
    },
  },
  responses: {
    200: {
      description: "Credits granted",
      content: { "application/json": { schema: z.object({ accountId: z.string(), credits: BalancesSchema }) } },
    },
    ...errorResponses(400, 401, 403, 404, 413, 415, 422),
  },
});

const createKey = createRoute({
  method: "post",
  path: "/admin/accounts/{accountId}/keys",
  tags: ["Admin"],
  summary: "Create another API key (shown once)",
  security: [{ AdminToken: [] }],
  request: {
    params: AccountIdParams,
    body: {
      content: {
        "application/json": {
          schema: z.object({ expiresAt: z.string().datetime({ offset: true }).optional() }).strict(),
        },
      },
      required: false,
    },
  },
  responses: {
    201: {
      description: "Key created",
      content: {
        "application/json": {
          schema: z.object({ keyId: z.string(), apiKey: z.string(), expiresAt: z.string().nullable() }),
        },
      },
    },
    ...errorResponses(400, 401, 403, 404, 413, 415, 503),
  },
});

const revokeKey = createRoute({
  method: "delete",
  path: "/admin/accounts/{accountId}/keys/{keyId}",
  tags: ["Admin"],
  summary: "Revoke an API key, at once",
  description:
    "Answers 200 once no object accepts the key: the account refuses it, and every batch object holding a copy of it (for reads with one object call) has dropped it. 503 REVOCATION_PENDING: revoked, but some batch object has not confirmed yet (retried automatically); repeat to wait.",
  security: [{ AdminToken: [] }],
  request: { params: KeyParams },
  responses: {
    200: {
      description: "Key revoked",
      content: { "application/json": { schema: z.object({ keyId: z.string(), revokedAt: z.string() }) } },
    },
    ...errorResponses(401, 403, 404, 503),
  },
});

const closeAccount = createRoute({
  method: "delete",
  path: "/admin/accounts/{accountId}",
  tags: ["Admin"],
  summary: "Close an account",
  description:
    "Revokes every key at once, cancels every active batch with refunds (running items finish and are charged), and refuses anything new. The ledger is kept. 503 REVOCATION_PENDING: closed, but some batch object has not confirmed dropping its key copies yet; repeat to wait.",
  security: [{ AdminToken: [] }],
  request: { params: AccountIdParams },
  responses: {
    200: {
      description: "Account closed",
      content: {
        "application/json": {
          schema: z.object({
            accountId: z.string(),
            closedAt: z.string(),
            keysRevoked: z.number().int(),
            batchesCancelled: z.number().int(),
            batchesFailedToCancel: z.number().int(),
            creditsRefunded: z.number().int(),
          }),
        },
      },
    },
    ...errorResponses(401, 403, 404, 503),
  },
});

const deadLetters = createRoute({
  method: "get",
  path: "/admin/dead-letters",
  tags: ["Admin"],
  summary: "Queue messages the executor gave up on (newest days first within the listing order of R2)",
  security: [{ AdminToken: [] }],
  request: { query: z.object({ cursor: z.string().max(1024).optional() }) },
  responses: {
    200: {
      description: "Dead-lettered messages",
      content: {
        "application/json": {
          schema: z.object({
            deadLetters: z.array(
              z.object({
                id: z.string(),
                queue: z.string(),
                attempts: z.number(),
                body: z.unknown(),
                deadAt: z.string(),
              }),
            ),
            cursor: z.string().nullable(),
          }),
        },
      },
    },
    ...errorResponses(400, 401, 403),
  },
});

export const admin = newRouter()
  .openapi(createAccount, async (c) => {
    const body = c.req.valid("json") ?? {};
    const accountId = crypto.randomUUID();
    const key = await generateApiKey(accountId, requireMacSecret(c.env));
    // Listed first (idempotent), so no account ever misses from /admin/stats; a listed id that fails to open counts as nothing.
    await registryObject(c.env).register(accountId);
    const opened = unwrap(
      await accountObject(c.env, accountId).open({
        accountId,
        name: body.name ?? null,
        credits: body.credits ?? 0,
        keyId: key.keyId,
        keyHash: key.keyHash,
      }),
    );
    const b = opened.balances;
    return c.json({ accountId, keyId: key.keyId, apiKey: key.apiKey, credits: b }, 201);
  })
  .openapi(getAccount, async (c) => {
    const accountId = requireUuid(c.req.valid("param").accountId, "account");
    const a = unwrap(await accountObject(c.env, accountId).describe());
    return c.json(
      {
        accountId: a.accountId,
        name: a.name,
        createdAt: iso(a.createdAt)!,
        credits: a.balances,
        keys: a.keys.map((k) => ({
          keyId: k.keyId,
          createdAt: iso(k.createdAt)!,
          expiresAt: iso(k.expiresAt),
          revokedAt: iso(k.revokedAt),
        })),
      },
      200,
    );
  })
  .openapi(grantCredits, async (c) => {
    const accountId = requireUuid(c.req.valid("param").accountId, "account");
    const { amount } = c.req.valid("json");
    const idempotencyKey = c.req.valid("header")["idempotency-key"] ?? crypto.randomUUID();
    const granted = unwrap(await accountObject(c.env, accountId).grant({ amount, idempotencyKey }));
    return c.json({ accountId, credits: granted.balances }, 200);
  })
  .openapi(createKey, async (c) => {
    const accountId = requireUuid(c.req.valid("param").accountId, "account");
    const expiresAt = c.req.valid("json")?.expiresAt;
    const expiresMs = expiresAt === undefined ? null : Date.parse(expiresAt);
    if (expiresMs !== null && expiresMs <= Date.now()) {
      throw new ApiError(400, "VALIDATION_ERROR", "expiresAt: must be in the future");
    }
    const key = await generateApiKey(accountId, requireMacSecret(c.env));
    unwrap(
      await accountObject(c.env, accountId).addKey({ keyId: key.keyId, keyHash: key.keyHash, expiresAt: expiresMs }),
    );
    return c.json({ keyId: key.keyId, apiKey: key.apiKey, expiresAt: iso(expiresMs) }, 201);
  })
  .openapi(closeAccount, async (c) => {
    const accountId = requireUuid(c.req.valid("param").accountId, "account");
    const closed = unwrap(await accountObject(c.env, accountId).close());
    return c.json(
      {
        accountId,
        closedAt: iso(closed.closedAt)!,
        keysRevoked: closed.keysRevoked,
        batchesCancelled: closed.cancelled.batchesCancelled,
        batchesFailedToCancel: closed.cancelled.batchesFailedToCancel,
        creditsRefunded: closed.cancelled.creditsRefunded,
      },
      200,
    );
  })
  .openapi(deadLetters, async (c) => {
    const listed = await c.env.RESULTS.list({
      prefix: "dead-letters/",
      limit: 100,
      cursor: c.req.valid("query").cursor,
    });
    const records = await Promise.all(
      listed.objects.map(async (o) =>
        (await c.env.RESULTS.get(o.key))?.json<{
          id: string;
          queue: string;
          attempts: number;
          body: unknown;
          deadAt: string;
        }>(),
      ),
    );
    return c.json(
      { deadLetters: records.filter((r) => r !== undefined), cursor: listed.truncated ? listed.cursor : null },
      200,
    );
  })
  .openapi(revokeKey, async (c) => {
    const { accountId: rawId, keyId } = c.req.valid("param");
    const accountId = requireUuid(rawId, "account");
    const revoked = unwrap(await accountObject(c.env, accountId).revokeKey(keyId));
    return c.json({ keyId, revokedAt: iso(revoked.revokedAt)! }, 200);
  });
