/**
 * `GET /api/batch/scrape/{batchId}/live`: a WebSocket that receives the batch after every
 * transition (`{ type: "batch", batch, item? }`), the first message being the batch as it is
 * when the socket opens. Browsers cannot set headers on a WebSocket, so the key may travel
 * as a subprotocol: `new WebSocket(url, ["batch-live", apiKey])` (src/http/auth.ts); the
 * server answers with `Sec-WebSocket-Protocol: batch-live`. Send "ping" to get "pong".
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { LIVE_ACCOUNT_HEADER, LIVE_KEY_HASH_HEADER, LIVE_KEY_HEADER, LIVE_PROTOCOL } from "../../batch/live";
import { ensureKeyChecked } from "../batch-reads";
import { ApiError } from "../errors";
import { batchObject, isUuid, requireUuid, unwrap } from "../objects";
import { ErrorSchema, errorResponses } from "../schemas";
import { newRouter } from "../validation";

const route = createRoute({
  method: "get",
  path: "/api/batch/scrape/{batchId}/live",
  tags: ["Batches"],
  summary: "Live updates of a batch (WebSocket)",
  description:
    'Upgrade to a WebSocket that receives `{ type: "batch", batch, item? }` after every transition of the batch ' +
    "(the first message is the batch as it is now). Authenticate with `x-api-key`, or, from a browser, with the " +
    'subprotocols `["batch-live", "<api key>"]`; the server selects `batch-live`. Send `ping` to get `pong`. ' +
    "The server closes the socket with code 4001 when the key is revoked or expires.",
  security: [{ ApiKeyAuth: [] }],
  request: {
    params: z.object({ batchId: z.string().openapi({ param: { name: "batchId", in: "path" }, format: "uuid" }) }),
    headers: z.object({
      upgrade: z.string().optional().openapi({ description: "Must be `websocket`." }),
      "sec-websocket-protocol": z
        .string()
        .optional()
        .openapi({ description: "`batch-live, <api key>` when the key cannot be sent as x-api-key (browsers)." }),
    }),
  },
  responses: {
    101: {
      description: "Switching protocols: the socket is open and receives the batch now and after each transition.",
      headers: z.object({ "Sec-WebSocket-Protocol": z.string().openapi({ example: LIVE_PROTOCOL }) }),
    },
    ...errorResponses(401, 403, 404, 410),
    426: { description: "Not a WebSocket upgrade", content: { "application/json": { schema: ErrorSchema } } },
    ...errorResponses(429),
  },
});

/** The object's refusal as an API error (its body is `{ code, message }`). */
async function refusal(res: Response): Promise<{ status: number; code: string; message: string }> {
  const body = await res
    .json<{ code?: string; message?: string }>()
    .catch(() => ({}) as { code?: string; message?: string });
  return {
    status: res.status,
    code: body.code ?? "UNAVAILABLE",
    message: body.message || "Could not open the live view.",
  };
}

export const live = newRouter().openapi(route, async (c) => {
  const rawId = c.req.valid("param").batchId;
  if (!isUuid(rawId)) {
    // As on every route: the key first, then not found.
    await ensureKeyChecked(c);
    requireUuid(rawId, "batch");
  }
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") {
    await ensureKeyChecked(c);
    throw new ApiError(426, "UPGRADE_REQUIRED", "This endpoint only accepts WebSocket upgrades.", {
      Upgrade: "websocket",
    });
  }
  const claim = c.get("keyClaim");
  if (claim !== undefined) {
    // One object call: the batch object checks the key from its copy, accepts the socket,
    // and closes it should the key end (src/batch/key-copies.ts).
    const res = await batchObject(c.env, rawId.toLowerCase()).fetch(
      new Request(c.req.url, {
        headers: {
          upgrade: "websocket",
          [LIVE_ACCOUNT_HEADER]: claim.accountId,
          [LIVE_KEY_HEADER]: claim.keyId,
          [LIVE_KEY_HASH_HEADER]: claim.keyHash,
        },
      }),
    );
    if (res.status === 101) {
      c.set("accountId", claim.accountId);
      return res as never;
    }
    const refused = await refusal(res);
    if (refused.code === "INVALID_API_KEY") return c.get("keyCheck").refuse();
    if (refused.code !== "KEY_UNCHECKED") {
      c.set("accountId", claim.accountId);
      throw new ApiError(refused.status as ContentfulStatusCode, refused.code, refused.message);
    }
  }
  // Not the key's account's batch (or no such batch), or the key already checked by the account.
  await ensureKeyChecked(c);
  const batchId = requireUuid(rawId, "batch");
  const accountId = c.get("accountId");
  const stub = batchObject(c.env, batchId);
  // Not yours, unknown or expired: the same answers as GET /api/batch/scrape/{batchId}.
  unwrap(await stub.get(accountId, -1, 1));
  // The batch object accepts the socket, then has the account check the key again and note
  // the view in one step, so a revocation in between still closes it (docs/live-views.md).
  const keyId = c.get("keyId");
  // A fresh request: no client header (a forged x-account-id, the key) reaches the object.
  const res = await stub.fetch(
    new Request(c.req.url, {
      headers: { upgrade: "websocket", [LIVE_ACCOUNT_HEADER]: accountId, [LIVE_KEY_HEADER]: keyId },
    }),
  );
  if (res.status !== 101) {
    const refused = await refusal(res);
    throw new ApiError(refused.status as ContentfulStatusCode, refused.code, refused.message);
  }
  return res as never;
});
