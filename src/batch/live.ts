/**
 * Live views of a batch: hibernatable WebSockets held by the batch object, sent the batch
 * (and the item that changed) after every transition. Clients authenticate when they
 * connect (the Worker checks the key and the owner, src/http/routes/live.ts, and forwards
 * the upgrade with the account and key ids); the object checks the owner again, accepts
 * the socket tagged with its account and key, and only then asks the account whether the
 * key is still valid (docs/live-views.md: why a revocation cannot slip in between).
 * Sockets survive the object's hibernation, and so do their tags: a close after a wake
 * finds them. "ping" is answered "pong" by the runtime without waking the object.
 */
import { batchNotFound, ERROR_STATUS, type Failure, fail } from "../domain/errors";
import type { BatchView, ItemView } from "./views";

export type LiveMessage = { type: "batch"; batch: BatchView; item?: ItemView };

/** The subprotocol a live view speaks; browsers drop the socket unless the server echoes it. */
export const LIVE_PROTOCOL = "batch-live";
/** Internal header: the account the Worker authenticated (never taken from a client). */
export const LIVE_ACCOUNT_HEADER = "x-account-id";
/** Internal header: the key that authenticated it; sockets are tagged with it, for revocation. */
export const LIVE_KEY_HEADER = "x-key-id";
/** Internal header: the SHA-256 of the key, when the batch object checks the key itself (src/batch/key-copies.ts). */
export const LIVE_KEY_HASH_HEADER = "x-key-hash";
/** Close code sent to the sockets of a revoked or expired key (4000-4999: for applications). */
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

/** A refused upgrade: the failure's code and message, with its HTTP status. */
function liveError({ code, message }: Failure): Response {
  return Response.json({ code, message }, { status: ERROR_STATUS[code] });
}

/** Who opens the view: the account the Worker authenticated, and the key it used. */
export interface LiveOwner {
  accountId: string;
  keyId: string;
}

/**
 * The batch object's `fetch`: accepts an owner's upgrade as a hibernatable socket, sends it
 * the batch as it is now, then asks the account (`admit`) whether the key is still valid,
 * which also notes the view so that ending the key closes it. The socket is accepted FIRST:
 * a close that comes while the answer is on its way finds it. The client gets its end
 * (status 101) only once admitted; refused, the socket is closed with 4001 and the client
 * answered 403. `batch` is null when the batch is not this account's.
 */
export async function acceptLive(
  ctx: DurableObjectState,
  request: Request,
  owner: LiveOwner,
  batch: BatchView | null,
  admit: (batchId: string) => Promise<boolean>,
): Promise<Response> {
  if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return liveError(fail("UPGRADE_REQUIRED", "This endpoint only accepts WebSocket upgrades."));
  }
  if (!owner.accountId || !owner.keyId || !batch) return liveError(batchNotFound());
  if (ctx.getWebSockets().length >= MAX_LIVE_SOCKETS) {
    return liveError(fail("TOO_MANY_CONNECTIONS", `At most ${MAX_LIVE_SOCKETS} live connections per batch.`));
  }
  const [client, server] = Object.values(new WebSocketPair()) as [WebSocket, WebSocket];
  ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair("ping", "pong"));
  ctx.acceptWebSocket(server, [owner.accountId, keyTag(owner.keyId)]);
  server.send(JSON.stringify({ type: "batch", batch } satisfies LiveMessage));
  let admitted: boolean;
  try {
    admitted = await admit(batch.batchId);
  } catch (err) {
    discard(server, client, 1011, "could not check the API key");
    throw err;
  }
  if (!admitted) {
    discard(server, client, KEY_REVOKED_CLOSE_CODE, "API key revoked or expired");
    return liveError(fail("INVALID_API_KEY", "This API key was revoked or expired while the live view opened."));
  }
  return new Response(null, { status: 101, webSocket: client, headers: { "sec-websocket-protocol": LIVE_PROTOCOL } });
}

/**
 * Closes a socket whose client end is never handed out: that end answers the close here,
 * or the server end would stay "closing" for ever and count against MAX_LIVE_SOCKETS.
 */
function discard(server: WebSocket, client: WebSocket, code: number, reason: string): void {
  client.accept();
  endSocket(server, code, reason);
  endSocket(client, code, reason);
}

function endSocket(ws: WebSocket, code: number, reason: string): boolean {
  try {
    ws.close(code, reason);
    return true;
  } catch {
    return false; // already closing
  }
}

function keyTag(keyId: string): string {
  return `key:${keyId}`;
}

/** Why a key's views are closed: the close reason says it (the code is 4001 either way). */
export type KeyEnd = "revoked" | "expired";

/** Closes the sockets opened with these keys (the keys ended). Returns how many. */
export function closeLiveOfKeys(ctx: DurableObjectState, keyIds: readonly string[], why: KeyEnd): number {
  let closed = 0;
  for (const keyId of keyIds) {
    for (const ws of ctx.getWebSockets(keyTag(keyId))) {
      if (endSocket(ws, KEY_REVOKED_CLOSE_CODE, `API key ${why}`)) closed++;
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
