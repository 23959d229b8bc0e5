/**
 * The queue consumer. A queue batch's messages are grouped by batch; each group asks its
 * batch object for leases in one call (it alone decides whether an item may start), runs
 * the items, and reports the outcomes through a SettleReporter (several per call when they
 * come together). A drop answer (batch cancelled, item not pending, stale dispatch) is
 * acked with no fetch and no charge.
 */
import {
  type ScrapeMessage,
  ScrapeMessageSchema,
  type SettleReport,
  type StartResult,
} from "../domain/executor-contract";
import type { Env } from "../env";
import { log } from "../lib/log";
import { type ItemOutcome, runItem } from "./run-item";
import { SettleReporter } from "./settle-reporter";

const SETTLE_TRIES = 3;

type Job = { message: Message<unknown>; body: ScrapeMessage };

export async function consumeScrapeBatch(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const groups = new Map<string, Job[]>();
  for (const message of batch.messages) {
    const parsed = ScrapeMessageSchema.safeParse(message.body);
    if (!parsed.success) {
      // It will never parse: let it go to the dead-letter queue for an operator to see.
      log("error", "malformed queue message", { id: message.id });
      message.retry();
      continue;
    }
    const group = groups.get(parsed.data.batchId) ?? [];
    group.push({ message, body: parsed.data });
    groups.set(parsed.data.batchId, group);
  }
  await Promise.all([...groups].map(([batchId, jobs]) => consumeGroup(batchId, jobs, env)));
}

/** One batch's messages: one startItems call, then each item runs and reports on its own. */
async function consumeGroup(batchId: string, jobs: Job[], env: Env): Promise<void> {
  const batchObject = env.BATCH.getByName(batchId);
  let leases: StartResult[];
  try {
    leases = await batchObject.startItems(jobs.map(({ body }) => ({ itemId: body.itemId, dispatch: body.dispatch })));
  } catch (err) {
    log("warn", "startItems failed; messages retried", { batchId, items: jobs.length, error: String(err) });
    for (const { message } of jobs) message.retry({ delaySeconds: Math.min(2 ** message.attempts, 60) });
    return;
  }
  const reporter = new SettleReporter((reports) => batchObject.settleItems(reports));
  await Promise.all(
    jobs.map(async ({ message, body }, i) => {
      const lease = leases[i];
      if (!lease || lease.action === "drop") {
        message.ack();
        return;
      }
      const outcome = await runItem(lease, env);
      const report = settleReport(body.itemId, lease.attempt, outcome);
      for (let attempt = 1; attempt <= SETTLE_TRIES; attempt++) {
        try {
          const settled = await reporter.report(report);
          log("info", "item settled", {
            batchId,
            itemId: body.itemId,
            attempt: lease.attempt,
            outcome: settled.outcome,
            ok: outcome.ok,
          });
          message.ack();
          return;
        } catch (err) {
          log("warn", "settlement failed", { batchId, itemId: body.itemId, try: attempt, error: String(err) });
          await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
        }
      }
      // The item stays running under its lease; the batch object's alarm takes it back.
      message.ack();
    }),
  );
}

function settleReport(itemId: string, attempt: number, outcome: ItemOutcome): SettleReport {
  return outcome.ok
    ? { itemId, attempt, outcome: "completed", result: outcome.inline, meta: outcome.meta }
    : {
        itemId,
        attempt,
        outcome: "failed",
        error: outcome.error,
        retryable: outcome.retryable,
        retryAfterSeconds: outcome.retryAfterSeconds,
        meta: outcome.meta,
      };
}

/** Messages the consumer gave up on: kept in R2 under dead-letters/ for operators. */
export async function consumeDeadLetters(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  for (const message of batch.messages) {
    const key = `dead-letters/${new Date().toISOString().slice(0, 10)}/${message.id}.json`;
    const record = {
      id: message.id,
      queue: batch.queue,
      attempts: message.attempts,
      body: message.body,
      deadAt: new Date().toISOString(),
    };
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
