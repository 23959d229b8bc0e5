/**
 * What the queue consumer did, for tests that must know a message was consumed before they
 * check that nothing else happened (instead of sleeping and hoping it was).
 */
import { vi } from "vitest";
import type { Env } from "../../src/env";
import worker from "../../src/index";
import { runInBatch } from "../helpers";

export interface Handled {
  queue: string;
  body: { batchId?: string; itemId?: string; dispatch?: number } & Record<string, unknown>;
  /** How the consumer let the message go; "none" if it returned without either. */
  outcome: "ack" | "retry" | "none";
}

/**
 * Wraps the Worker's queue handler (the runtime calls it through the default export) and
 * records each message when the handler takes it (`received`) and when it has returned
 * (`handled`, with ack or retry). Call it before the messages are sent; `afterEach(() =>
 * vi.restoreAllMocks())` puts the real handler back.
 */
export function watchConsumer() {
  const real = worker.queue.bind(worker);
  const received: Handled["body"][] = [];
  const handled: Handled[] = [];
  vi.spyOn(worker, "queue").mockImplementation(async (batch: MessageBatch<unknown>, env: Env) => {
    const outcome = new Map<string, Handled["outcome"]>();
    const messages = batch.messages.map((m) => {
      received.push(m.body as Handled["body"]);
      return {
        id: m.id,
        timestamp: m.timestamp,
        body: m.body,
        attempts: m.attempts,
        ack: () => (outcome.set(m.id, "ack"), m.ack()),
        retry: (options?: QueueRetryOptions) => (outcome.set(m.id, "retry"), m.retry(options)),
      };
    });
    const watched = {
      queue: batch.queue,
      metadata: batch.metadata,
      messages,
      ackAll: () => batch.ackAll(),
      retryAll: (o?: QueueRetryOptions) => batch.retryAll(o),
    };
    try {
      await real(watched as MessageBatch<unknown>, env);
    } finally {
      for (const m of batch.messages)
        handled.push({ queue: batch.queue, body: m.body as Handled["body"], outcome: outcome.get(m.id) ?? "none" });
    }
  });
  const of = (batchIds: string[]) => (body: Handled["body"]) => batchIds.includes(body.batchId ?? "");
  return {
    /** Messages of these batches the handler has taken, finished or not. */
    received: (...batchIds: string[]) => received.filter(of(batchIds)),
    /** Messages of these batches the handler is done with. */
    handled: (...batchIds: string[]) => handled.filter((h) => of(batchIds)(h.body)),
  };
}

/**
 * Queue messages a batch object has sent so far: each dispatch raises its item's token by
 * one. Throws while a send still waits in the object's outbox (the count is not final).
 */
export async function messagesSent(batchId: string): Promise<number> {
  return runInBatch(batchId, (o, state) => {
    if (o.toQueue.size() > 0) throw new Error(`${batchId}: sends still waiting in the outbox to the queue`);
    return state.storage.sql.exec<{ n: number }>("SELECT coalesce(sum(dispatch_token), 0) AS n FROM items").one().n;
  });
}
