/**
 * Live views of a batch: hibernatable WebSockets held by the batch object, sent the batch
 * (and the item that changed) after every transition. Clients authenticate when they
 * connect (the Worker checks the key); the object only tags sockets with their account.
 */
import type { BatchView, ItemView } from "./views";

export type LiveMessage = { type: "batch"; batch: BatchView; item?: ItemView };

export function broadcast(ctx: DurableObjectState, message: LiveMessage): void {
  const sockets = ctx.getWebSockets();
  if (sockets.length === 0) return;
  const text = JSON.stringify(message);
  for (const ws of sockets) {
    try {
      ws.send(text);
    } catch {
      // A socket that is closing: its close handler cleans up.
    }
  }
}
