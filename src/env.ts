import type { AccountObject } from "./account/account-object";
import type { BatchObject } from "./batch/batch-object";

/** Bindings and vars, as declared in wrangler.toml (plus the ADMIN_TOKEN secret). */
export interface Env {
  BATCH: DurableObjectNamespace<BatchObject>;
  ACCOUNT: DurableObjectNamespace<AccountObject>;
  ADMIN_TOKEN?: string;
  MAX_URLS_PER_BATCH?: string;
  MAX_BODY_BYTES?: string;
  RESERVATION_TIMEOUT_MS?: string;
}

/** Variables that middleware sets on the Hono context. */
export interface Variables {
  accountId: string;
}

export type AppEnv = { Bindings: Env; Variables: Variables };
