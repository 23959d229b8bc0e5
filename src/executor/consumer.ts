/**
 * The queue consumer. For each message: ask the batch object for a lease (it alone decides
 * whether the item may start), run the item, report the outcome, ack. A drop answer (batch
 * cancelled, item not pending, stale dispatch) is acked with no fetch and no charge.
 */
import type { Env } from "../env";
import { ScrapeMessageSchema } from "./message";
import { runItem } from "./run-item";

const SETTLE_TRIES = 3;

export async function consumeScrapeBatch(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  await Promise.all(batch.messages.map((message) => consumeMessage(message, env)));
}

async function consumeMessage(message: Message<unknown>, env: Env): Promise<void> {
  const parsed = ScrapeMessageSchema.safeParse(message.body);
  if (!parsed.success) {
    // It will never parse: let it go to the dead-letter queue for an operator to see.
    log("error", "malformed queue message", { id: message.id });
    message.retry();
    return;
  }
  const { batchId, itemId, dispatch } = parsed.data;
  const batchObject = env.BATCH.getByName(batchId);

  let lease;
  try {
    lease = await batchObject.startItem(itemId, dispatch);
  } catch (err) {
    log("warn", "startItem failed; message retried", { batchId, itemId, error: String(err) });
    message.retry({ delaySeconds: Math.min(2 ** message.attempts, 60) });
    return;
  }
  if (lease.action === "drop") {
    message.ack();
    return;
  }

  const outcome = await runItem(lease, env);
  for (let attempt = 1; attempt <= SETTLE_TRIES; attempt++) {
    try {
      const settled = outcome.ok
        ? await batchObject.completeItem(itemId, lease.attempt, outcome.inline, outcome.meta)
        : await batchObject.failItem(itemId, lease.attempt, outcome.error, {
            retryable: outcome.retryable,
            retryAfterSeconds: outcome.retryAfterSeconds,
            meta: outcome.meta,
          });
      log("info", "item settled", { batchId, itemId, attempt: lease.attempt, outcome: settled.outcome, ok: outcome.ok });
      message.ack();
      return;
    } catch (err) {
      log("warn", "settlement failed", { batchId, itemId, try: attempt, error: String(err) });
      await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
    }
  }
  // The item stays running under its lease; the batch object's alarm takes it back.
  message.ack();
}

/** Messages the consumer gave up on: kept in R2 under dead-letters/ for operators. */
export async function consumeDeadLetters(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  for (const message of batch.messages) {
    const key = `dead-letters/${new Date().toISOString().slice(0, 10)}/${message.id}.json`;
    const record = { id: message.id, queue: batch.queue, attempts: message.attempts, body: message.body, deadAt: new Date().toISOString() };
    try {
      await env.RESULTS.put(key, JSON.stringify(record), { httpMetadata: { contentType: "application/json" } });
      log("error", "message dead-lettered", { id: message.id, key });
      message.ack();
    } catch (err) {
      log("error", "could not record dead letter", { id: message.id, error: String(err) });
      message.retry();
    }
  }
}

function log(level: "info" | "warn" | "error", msg: string, fields: Record<string, unknown>): void {
  const line = JSON.stringify({ level, msg, ...fields });
  if (level === "info") console.log(line);
  else console.error(line);
}
