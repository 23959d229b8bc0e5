/** The Worker: HTTP routes, plus the Durable Object classes it binds. */
import type { Env } from "./env";
import { createApp } from "./http/app";

const app = createApp();

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Env>;

export { AccountObject } from "./account/account-object";
export { BatchObject } from "./batch/batch-object";
