/**
 * The in-workerd half of `npm run bench` (bench/run.mjs runs it; never part of `npm test`).
 * Bench files are plain tests that time things and attach their figures to the test's
 * meta (read back from vitest's JSON report); they assert counts, never timings.
 *
 * The Worker is the real one, read from ./wrangler.toml (so the bench never drifts from
 * it), with bench/worker.ts as entry point: the same exports plus BareObject, bound here
 * as BARE. Vars below override wrangler.toml's for the bench only.
 */
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

export default defineConfig({
  plugins: [
    cloudflareTest({
      main: "./bench/worker.ts",
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        durableObjects: { BARE: { className: "BareObject", useSQLite: true } },
        bindings: {
          ADMIN_TOKEN: "bench",
          // API keys are MACed under it (docs/abuse-limits.md); without it no key is issued.
          API_KEY_MAC_SECRET: "bench-api-key-mac-secret-0123456789abcdef",
          // The bench drives startItem/completeItem itself; nothing is queued.
          DISPATCH_PAUSED: "true",
          // The 100k-item cancel needs the size limits raised (bench only).
          MAX_URLS_PER_BATCH: "100000",
          MAX_BODY_BYTES: "20000000",
          // The bench polls one batch thousands of times a second (the batch object's poll budget).
          POLL_LIMIT_PER_MINUTE: "1000000000",
        },
      },
    }),
  ],
  test: {
    name: "bench",
    include: ["bench/**/*.bench.test.ts"],
    // One file at a time: the files measure throughput and must not share the 2 cores.
    fileParallelism: false,
    testTimeout: 240_000,
    hookTimeout: 120_000,
  },
});
