import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// Tests get a fixed admin token and key MAC secret; production sets them with `wrangler secret put`.
// A high cap on active batches: tests open many per account (the cap has its own test).
const bindings = {
  ADMIN_TOKEN: "test-admin-token",
  API_KEY_MAC_SECRET: "test-api-key-mac-secret-0123456789abcdef",
  COOKIE_SECRET: "test-cookie-secret-0123456789abcdef-0123",
  MAX_ACTIVE_BATCHES: "100000",
  // Polls per key and batch (src/batch/poll-budget.ts) out of reach, like the limiters below;
  // the 429 path is tested with a budget put into the batch object.
  POLL_LIMIT_PER_MINUTE: "6000000",
};
// Tests make many requests (and failed authentications) per key and address in a minute; the
// 429 paths are tested with injected limiters.
const high = (namespace_id: string) => ({ namespace_id, simple: { limit: 100_000, period: 60 as const } });
const ratelimits = {
  CREATE_LIMITER: high("1001"),
  CANCEL_LIMITER: high("1002"),
  RETRY_LIMITER: high("1003"),
  LIVE_LIMITER: high("1004"),
  READ_LIMITER: high("1005"),
  FAILED_AUTH_IP_LIMITER: high("1006"),
  FAILED_AUTH_KEY_LIMITER: high("1007"),
  WEBHOOK_SECRET_LIMITER: high("1008"),
};
// Model sequences (and race/fault rounds) of test/reliability: `npm run reliability` asks for more.
const provide = { reliabilityRuns: Number(process.env.RELIABILITY_RUNS) || 25 };

export default defineConfig({
  test: {
    // Every request logs a line: keep the output of passing tests out of the report.
    silent: "passed-only",
    projects: [
      {
        // Objects, routes and pure logic. Dispatch is paused: tests drive startItem/completeItem themselves.
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: { bindings: { ...bindings, DISPATCH_PAUSED: "true" }, ratelimits },
          }),
        ],
        test: { name: "unit", include: ["test/{core,http,domain,executor,reliability,ops}/**/*.test.ts"], provide },
      },
      {
        // The real path: batch object -> queue -> consumer -> batch object, with outbound fetch stubbed.
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                ...bindings,
                DISPATCH_PAUSED: "false",
                RETRY_BASE_DELAY_MS: "20",
                FETCH_TIMEOUT_MS: "2000",
                ACCOUNT_MAX_CONCURRENCY: "3",
              },
              ratelimits,
              // Overrides replace wrangler.toml's consumer settings, so the dead-letter queue is named again.
              queueConsumers: {
                "scrape-items": { maxBatchTimeout: 0.05, maxRetries: 2, deadLetterQueue: "scrape-items-dlq" },
                "scrape-items-dlq": { maxBatchTimeout: 0.05 },
              },
            },
          }),
        ],
        test: { name: "queue", include: ["test/queue/**/*.test.ts"], provide },
      },
    ],
  },
});
