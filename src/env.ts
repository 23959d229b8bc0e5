import type { AccountObject } from "./account/account-object";
import type { BatchObject } from "./batch/batch-object";
import type { RegistryObject } from "./registry/registry-object";

/** Bindings and vars, as declared in wrangler.toml (plus the ADMIN_TOKEN and API_KEY_MAC_SECRET secrets). */
export interface Env {
  BATCH: DurableObjectNamespace<BatchObject>;
  ACCOUNT: DurableObjectNamespace<AccountObject>;
  /** One object: the list of accounts, for operator-wide stats. */
  REGISTRY: DurableObjectNamespace<RegistryObject>;
  SCRAPE_QUEUE: Queue<import("./domain/executor-contract").ScrapeMessage>;
  RESULTS: R2Bucket;
  ADMIN_TOKEN?: string;
  /** Secret (at least 32 characters) API keys are MACed with; without it no key is issued or accepted (docs/abuse-limits.md). */
  API_KEY_MAC_SECRET?: string;
  /** Per-location request limits, declared in wrangler.toml for every environment. */
  CREATE_LIMITER?: RateLimit;
  CANCEL_LIMITER?: RateLimit;
  RETRY_LIMITER?: RateLimit;
  LIVE_LIMITER?: RateLimit;
  READ_LIMITER?: RateLimit;
  WEBHOOK_SECRET_LIMITER?: RateLimit;
  /** Failed authentications, per client address and per key id (src/http/rate-limit.ts). */
  FAILED_AUTH_IP_LIMITER?: RateLimit;
  FAILED_AUTH_KEY_LIMITER?: RateLimit;
  /** Days a finished batch and its results are kept (default 30, at least 1). */
  RETENTION_DAYS?: string;
  /** "true" stops new dispatches (items stay pending): an operator's brake, and the unit tests' mode. */
  DISPATCH_PAUSED?: string;
  /** "true" lets the executor fetch 127.0.0.1 / localhost: local development and tests only. */
  ALLOW_LOOPBACK_TARGETS?: string;
  FETCH_TIMEOUT_MS?: string;
  /** Items of one account that may run (or wait in the queue) at once, across its batches. */
  ACCOUNT_MAX_CONCURRENCY?: string;
  /** First retry delay of a failed webhook delivery (doubles each attempt, capped at 1 h, for 24 h). */
  WEBHOOK_RETRY_BASE_MS?: string;
  /** First retry delay after a transient failure (doubles each attempt). */
  RETRY_BASE_DELAY_MS?: string;
  FETCH_MAX_BYTES?: string;
  /** Limits on extracting one page (src/executor/budget.ts, docs/extraction-limits.md). */
  EXTRACT_MAX_ELEMENTS?: string;
  EXTRACT_MAX_TEXT_BYTES?: string;
  EXTRACT_MAX_OUTPUT_BYTES?: string;
  EXTRACT_MAX_SELECTOR_BYTES?: string;
  EXTRACT_TIMEOUT_MS?: string;
  /** Firecrawl-compatible status pages: at most this many documents, and about this many bytes (docs/firecrawl.md). */
  FIRECRAWL_PAGE_SIZE?: string;
  FIRECRAWL_PAGE_BYTES?: string;
  /** The User-Agent pages are fetched with: name the operator's contact page here. */
  FETCH_USER_AGENT?: string;
  MAX_URLS_PER_BATCH?: string;
  /** Batches one account may have pending or running at once (default 100). */
  MAX_ACTIVE_BATCHES?: string;
  MAX_BODY_BYTES?: string;
  RESERVATION_TIMEOUT_MS?: string;
}

/** Variables that middleware sets on the Hono context. */
export interface Variables {
  accountId: string;
  /** The API key's id (never the key): what rate limits count by. */
  keyId: string;
  /** The request limiter that counted this request (each request is counted by one). */
  limitedBy: string;
  /** Set first on every request (src/http/observability.ts); echoed in x-request-id and error bodies. */
  requestId: string;
  /** The error code of the response, when it is an error: for the request log line. */
  errorCode: string;
}

export type AppEnv = { Bindings: Env; Variables: Variables };
