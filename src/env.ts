import type { AccountObject } from "./account/account-object";
import type { BatchObject } from "./batch/batch-object";

/** Bindings and vars, as declared in wrangler.toml (plus the ADMIN_TOKEN secret). */
export interface Env {
  BATCH: DurableObjectNamespace<BatchObject>;
  ACCOUNT: DurableObjectNamespace<AccountObject>;
  SCRAPE_QUEUE: Queue<import("./executor/message").ScrapeMessage>;
  RESULTS: R2Bucket;
  ADMIN_TOKEN?: string;
  /** "true" stops new dispatches (items stay pending): an operator's brake, and the unit tests' mode. */
  DISPATCH_PAUSED?: string;
  /** "true" lets the executor fetch 127.0.0.1 / localhost: local development and tests only. */
  ALLOW_LOOPBACK_TARGETS?: string;
  FETCH_TIMEOUT_MS?: string;
  /** Items of one account that may run (or wait in the queue) at once, across its batches. */
  ACCOUNT_MAX_CONCURRENCY?: string;
  /** First retry delay after a transient failure (doubles each attempt). */
  RETRY_BASE_DELAY_MS?: string;
  FETCH_MAX_BYTES?: string;
  MAX_URLS_PER_BATCH?: string;
  MAX_BODY_BYTES?: string;
  RESERVATION_TIMEOUT_MS?: string;
}

/** Variables that middleware sets on the Hono context. */
export interface Variables {
  accountId: string;
}

export type AppEnv = { Bindings: Env; Variables: Variables };
