/**
 * Live views of a batch: hibernatable WebSockets held by the batch object, sent the batch
 * (and the item that changed) after every transition. Clients authenticate when they
 * connect (the Worker checks the key and the owner, src/http/routes/live.ts, and forwards
 * the upgrade with the account id); the object checks the owner again and tags sockets
 * with their account. Sockets survive the object's hibernation; "ping" is answered
 * "pong" by the runtime without waking it.
 */
import type { BatchView, ItemView } from "./views";

export type LiveMessage = { type: "batch"; batch: BatchView; item?: ItemView };

/** The subprotocol a live view speaks; browsers drop the socket unless the server echoes it. */
export const LIVE_PROTOCOL = "batch-live";
/** Internal header: the account the Worker authenticated (never taken from a client). */
export const LIVE_ACCOUNT_HEADER = "x-account-id";
/** Internal header: the key that authenticated it; sockets are tagged with it, for revocation. */
export const LIVE_KEY_HEADER = "x-key-id";
/** Close code sent to the sockets of a revoked key (4000-4999: for applications). */
export const KEY_REVOKED_CLOSE_CODE = 4001;
/** Sockets one batch object holds at most (each is a little memory and one send per transition). */
export const MAX_LIVE_SOCKETS = 100;

/** Sends every live socket the message; `message` is only made when someone listens. */
export function broadcast(ctx: DurableObjectState, message: () => LiveMessage): void {
  const sockets = ctx.getWebSockets();
  if (sockets.length === 0) return;
  const text = JSON.stringify(message());
  for (const ws of sockets) {
    try {
      ws.send(text);
    } catch {
      // A socket that is closing: its close handler cleans up.
    }
  }
}

function liveError(status: number, code: string, message: string): Response {
  return Response.json({ code, message }, { status });
}

/**
 * The batch object's `fetch`: accepts an owner's upgrade as a hibernatable socket and
 * sends it the batch as it is now. `batch` is null when the batch is not this account's.
 */
export function acceptLive(ctx: DurableObjectState, request: Request, accountId: string, keyId: string, batch: BatchView | null): Response {
  if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return liveError(426, "UPGRADE_REQUIRED", "This endpoint only accepts WebSocket upgrades.");
  }
  if (!accountId || !batch) return liveError(404, "NOT_FOUND", "No batch found with this ID.");
  if (ctx.getWebSockets().length >= MAX_LIVE_SOCKETS) {
    return liveError(429, "TOO_MANY_CONNECTIONS", `At most ${MAX_LIVE_SOCKETS} live connections per batch.`);
  }
  const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
  ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  ctx.acceptWebSocket(server, keyId ? [accountId, keyTag(keyId)] : [accountId]);
  server.send(JSON.stringify({ type: "batch", batch } satisfies LiveMessage));
  return new Response(null, { status: 101, webSocket: client, headers: { "sec-websocket-protocol": LIVE_PROTOCOL } });
}

function keyTag(keyId: string): string {
  return `key:${keyId}`;
}

/** Closes the sockets opened with these keys (the keys were revoked). Returns how many. */
export function closeLiveOfKeys(ctx: DurableObjectState, keyIds: readonly string[]): number {
  let closed = 0;
  for (const keyId of keyIds) {
    for (const ws of ctx.getWebSockets(keyTag(keyId))) {
      try {
        ws.close(KEY_REVOKED_CLOSE_CODE, "API key revoked");
        closed++;
      } catch {
        // already closing
      }
    }
  }
  return closed;
}

/** A message from a live client: "ping" is answered (should the auto-response not be set); the rest is ignored. */
export function answerLive(ws: WebSocket, message: string | ArrayBuffer): void {
  if (message === "ping") ws.send("pong");
}

/** The client closed: complete the closing handshake (a socket already closed throws, harmlessly). */
export function closeLive(ws: WebSocket, code: number, reason: string): void {
  try {
    ws.close(code === 1005 || code === 1006 ? 1000 : code, reason);
  } catch {
    // already closed
  }
}
