// The Worker's own JavaScript for one status poll (Hono, auth, validation, routing, the
// envelope), run in Node against a stub batch object, beside a bare Response in the same
// run. It shows what `wrangler dev`'s figures cannot: how much of a poll is our code rather
// than workerd's per-call machinery (docs/scaling.md, "What a poll costs").
//
// The app (src/http/app.ts) is bundled with esbuild into a temporary directory; the Durable
// Object base class is a stand-in (nothing here runs an object). Bounded: a fixed count.
//
// Usage: node bench/worker-js.mjs [--polls N]
import { timingSafeEqual } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { createRequire } from "node:module";
import { ROOT } from "../scripts/lib/wrangler.mjs";

// wrangler's own bundler (a dependency of wrangler, not of ours): the one that builds the Worker.
const { build } = createRequire(join(ROOT, "node_modules/wrangler/package.json"))("esbuild");

const args = process.argv.slice(2);
const POLLS = args.includes("--polls") ? Number(args[args.indexOf("--polls") + 1]) : 50_000;
const WARM = 20_000;

// workerd has crypto.subtle.timingSafeEqual; Node has it in node:crypto.
crypto.subtle.timingSafeEqual ??= (a, b) => timingSafeEqual(a, b);

const dir = await mkdtemp(join(tmpdir(), "worker-js-"));
try {
  await writeFile(
    join(dir, "entry.ts"),
    `export { createApp } from ${JSON.stringify(join(ROOT, "src/http/app"))};
     export { generateApiKey } from ${JSON.stringify(join(ROOT, "src/account/keys"))};`,
  );
  await writeFile(
    join(dir, "workers.js"),
    "export class DurableObject { constructor(ctx, env) { this.ctx = ctx; this.env = env; } }",
  );
  await build({
    entryPoints: [join(dir, "entry.ts")],
    absWorkingDir: ROOT,
    nodePaths: [join(ROOT, "node_modules")],
    bundle: true,
    format: "esm",
    platform: "neutral",
    mainFields: ["module", "main"],
    alias: { "cloudflare:workers": join(dir, "workers.js") },
    outfile: join(dir, "app.mjs"),
    logLevel: "error",
    // The API reference's browser bundle is data in the Worker (wrangler.toml's rules), not code.
    plugins: [
      { name: "data", setup: (b) => b.onLoad({ filter: /standalone\.js$/ }, () => ({ contents: "", loader: "text" })) },
    ],
  });
  const { createApp, generateApiKey } = await import(pathToFileURL(join(dir, "app.mjs")).href);

  const app = createApp();
  const secret = "bench-mac-secret-0123456789abcdef-0123456789";
  const { apiKey } = await generateApiKey("0f8a9cb9-20eb-4e8e-b0a1-000000000001", secret);
  const json = JSON.stringify({ status: "running", items: [{ url: "https://example.com/" }], nextCursor: null });
  let objectCalls = 0;
  const batch = {
    getJsonAs: async () => {
      objectCalls++;
      return { ok: true, json };
    },
  };
  const env = { API_KEY_MAC_SECRET: secret, BATCH: { getByName: () => batch }, POLL_LOG_SAMPLE: String(POLLS * 10) };
  const ctx = { waitUntil() {}, passThroughOnException() {}, props: {} };
  const url = "http://bench.local/api/batch/scrape/0f8a9cb9-20eb-4e8e-b0a1-000000000002?limit=1";
  const poll = async () => {
    const res = await app.fetch(new Request(url, { headers: { "x-api-key": apiKey } }), env, ctx);
    if (res.status !== 200) throw new Error(`poll answered ${res.status}: ${await res.text()}`);
    await res.text();
  };
  const bare = async () => {
    new Request(url, { headers: { "x-api-key": apiKey } });
    await new Response(json, { headers: { "content-type": "application/json" } }).text();
  };
  const time = async (fn) => {
    for (let i = 0; i < WARM; i++) await fn();
    const t0 = performance.now();
    for (let i = 0; i < POLLS; i++) await fn();
    return ((performance.now() - t0) * 1000) / POLLS;
  };
  const baseline = await time(bare);
  const polled = await time(poll);
  if (objectCalls !== WARM + POLLS) throw new Error(`expected one object call per poll, saw ${objectCalls}`);
  console.log(
    `Worker JavaScript per poll: ${polled.toFixed(1)} µs (a bare Request + Response: ${baseline.toFixed(1)} µs; ${POLLS} polls, one stub object call each)`,
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}
