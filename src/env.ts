import type { AccountObject } from "./account/account-object";
import type { BatchObject } from "./batch/batch-object";
import type { RegistryObject } from "./registry/registry-object";

/** Bindings and vars, as declared in wrangler.toml (plus the ADMIN_TOKEN, API_KEY_MAC_SECRET and COOKIE_SECRET secrets). */
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
  /** One successful poll of a batch in this many gets the request log line (default 100; 1: every poll). */
  POLL_LOG_SAMPLE?: string;
  /** Polls of one batch per API key a minute, limited by the batch object (default 600; src/batch/poll-budget.ts). */
  POLL_LIMIT_PER_MINUTE?: string;
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
  /** Workers AI, declared (`[ai]`) only in the deployed environments: wrangler dev has no local model. */
  AI?: Ai;
  /** "true" turns AI extraction (`prompt`, `schema`) on; it also needs the AI binding (docs/ai-extraction.md). */
  AI_ENABLED?: string;
  /** The Workers AI model (default @cf/meta/llama-3.3-70b-instruct-fp8-fast); it must support JSON mode. */
  AI_MODEL?: string;
  /** Characters of page text sent to the model (default 32000); longer pages are cut, and the result says so. */
  AI_MAX_INPUT_CHARS?: string;
  /** Tokens the model may answer with (default 2048). */
  AI_MAX_OUTPUT_TOKENS?: string;
  /** Secret (at least 32 characters) a batch's cookies are sealed under until it ends; without it `cookies` is refused. */
  COOKIE_SECRET?: string;
}

/** Variables that middleware sets on the Hono context. */
export interface Variables {
  accountId: string;
  /** The API key's id (never the key): what rate limits count by. */
  keyId: string;
  /**
   * On a batch read (src/http/batch-reads.ts): the key, MAC-checked but not yet known valid,
   * for the batch object to check; `accountId` is set only once it has.
   */
  keyClaim: import("./domain/key-claim").KeyClaim;
  /** On a batch read: refuse the claimed key (counted as a failed authentication), or have the account check it. */
  keyCheck: { refuse(): Promise<never>; withAccount(): Promise<void> };
  /** The request limiter that counted this request (each request is counted by one). */
  limitedBy: string;
  /**
   * On a poll the batch object limits (src/batch/poll-budget.ts): READ_LIMITER's count, held
   * back; readBatch calls it only when the poll falls back to the account path.
   */
  countIfFallback: () => Promise<void>;
  /** Set first on every request (src/http/observability.ts); echoed in x-request-id and error bodies. */
  requestId: string;
  /** The error code of the response, when it is an error: for the request log line. */
  errorCode: string;
}

export type AppEnv = { Bindings: Env; Variables: Variables };
