/** The Worker: HTTP routes, plus the Durable Object classes it binds. */
import type { Env } from "./env";
import { consumeDeadLetters, consumeScrapeBatch } from "./executor/consumer";
import { createApp } from "./http/app";

const app = createApp();

export default {
  fetch: app.fetch,
  async queue(batch, env) {
    // The dead-letter queue is named after the main one, with a "-dlq" suffix (see wrangler.toml).
    if (batch.queue.endsWith("-dlq")) await consumeDeadLetters(batch, env);
    else await consumeScrapeBatch(batch, env);
  },
} satisfies ExportedHandler<Env>;

export { AccountObject } from "./account/account-object";
export { BatchObject } from "./batch/batch-object";
export { RegistryObject } from "./registry/registry-object";
