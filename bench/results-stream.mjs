// The results download (GET /api/batch/scrape/:id/results) of a large batch through `wrangler
// dev` on 127.0.0.1: time per 10k lines, and the memory of the workerd process while it
// streams (resident set size, sampled from /proc every 20 ms), for a 10k- and a 100k-item
// batch, NDJSON and CSV. Baseline, in the same run: reading the same items the only way
// there was before, GET /api/batch/scrape/:id page by page (100 items a page).
//
// Constant memory means the RSS growth while streaming 100k lines is about that of 10k
// lines, not ten times it. The items are pending (dispatch is paused: nothing can complete
// them from outside the Worker), so a line is ~250 bytes without a result; the result path
// is covered by the tests and bench/results.bench.test.ts times it inside workerd.
//
// Bounded: the whole script stops after BOUNDS.total; wrangler's process group is stopped on
// every exit path. Network: 127.0.0.1 only.
//
// Usage: node bench/results-stream.mjs [--json <file>]
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePorts, groupAlive, ROOT, signalGroup, sleep, startWrangler, stopGroup } from "../scripts/lib/wrangler.mjs";

const args = process.argv.slice(2);
const JSON_OUT = args.includes("--json") ? args[args.indexOf("--json") + 1] : null;
const SIZES = [10_000, 100_000];
const PAGE = 100;
const BOUNDS = { ready: 90_000, request: 240_000, stopGrace: 5_000, total: 480_000 };

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;
const log = (msg) => console.log(`[results ${elapsed()}] ${msg}`);

let wrangler = null;
let workDir = null;
const tail = (n) => wrangler.log.filter((line) => line.trim()).slice(-n);

let cleaning = null;
function cleanup() {
  cleaning ??= (async () => {
    if (wrangler && groupAlive(wrangler.pgid)) await stopGroup(wrangler.pgid, BOUNDS.stopGrace);
    if (workDir) await rm(workDir, { recursive: true, force: true, maxRetries: 3 }).catch(() => {});
  })();
  return cleaning;
}
process.on("exit", () => {
  if (wrangler && groupAlive(wrangler.pgid)) signalGroup(wrangler.pgid, "SIGKILL");
});
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.once(sig, async () => {
    log(`${sig}: stopping`);
    await cleanup();
    process.exit(130);
  });
}
const watchdog = setTimeout(async () => {
  log(`TIMEOUT after ${BOUNDS.total / 1000} s`);
  await cleanup();
  process.exit(1);
}, BOUNDS.total);

/** The project's wrangler.toml with the rate limits raised out of reach (the bench reads 1000 pages a minute). */
async function benchConfig(dir) {
  const toml = await readFile(join(ROOT, "wrangler.toml"), "utf8");
  const path = join(dir, "wrangler.toml");
  await writeFile(
    path,
    toml.replace(/^(simple\s*=\s*\{\s*limit\s*=\s*)\d+/gm, (_, head) => `${head}${1_000_000_000}`),
  );
  return path;
}

let base;
async function api(method, path, { body, headers = {} } = {}) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(BOUNDS.request),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: res.status, body: json };
}

function must(cond, what, detail) {
  if (!cond) throw new Error(`${what}: ${typeof detail === "string" ? detail : JSON.stringify(detail)?.slice(0, 500)}`);
}

// ---------------------------------------------------------------- memory of the workerd processes

/** workerd processes in wrangler's group. */
function workerdPids() {
  const out = execFileSync("ps", ["-o", "pid=,comm=", "-g", String(wrangler.pgid)], { encoding: "utf8" });
  return out
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .filter(([, comm]) => comm?.startsWith("workerd"))
    .map(([pid]) => Number(pid));
}

function rssBytes(pids) {
  let total = 0;
  for (const pid of pids) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      if (m) total += Number(m[1]) * 1024;
    } catch {
      /* gone */
    }
  }
  return total;
}

/** Runs `fn` while sampling RSS every 20 ms: { ms, value, rssBefore, rssPeak }. */
async function withMemory(fn) {
  const pids = workerdPids();
  const rssBefore = rssBytes(pids);
  let rssPeak = rssBefore;
  const timer = setInterval(() => {
    rssPeak = Math.max(rssPeak, rssBytes(pids));
  }, 20);
  const t0 = performance.now();
  try {
    const value = await fn();
    return { ms: performance.now() - t0, value, rssBefore, rssPeak: Math.max(rssPeak, rssBytes(pids)) };
  } finally {
    clearInterval(timer);
  }
}

// ---------------------------------------------------------------- readers

/** Reads the download as it arrives; counts lines (NDJSON) or rows (CSV), never keeping the text. */
async function download(key, batchId, format) {
  const res = await fetch(`${base}/api/batch/scrape/${batchId}/results?format=${format}`, {
    headers: key,
    signal: AbortSignal.timeout(BOUNDS.request),
  });
  must(res.status === 200, `results ${format}`, res.status);
  let lines = 0;
  let bytes = 0;
  // NDJSON lines end in LF, CSV rows in CRLF; no field here holds a line break.
  for await (const chunk of res.body) {
    bytes += chunk.length;
    for (const b of chunk) if (b === 0x0a) lines++;
  }
  return { lines: format === "csv" ? lines - 1 : lines, bytes };
}

async function paged(key, batchId) {
  let cursor = null;
  let items = 0;
  do {
    const r = await api("GET", `/api/batch/scrape/${batchId}?limit=${PAGE}${cursor ? `&cursor=${cursor}` : ""}`, {
      headers: key,
    });
    must(r.status === 200, "paged read", r.status);
    items += r.body.items.length;
    cursor = r.body.nextCursor;
  } while (cursor);
  return { lines: items };
}

// ---------------------------------------------------------------- the run

async function main() {
  const [apiPort, inspectorPort] = await freePorts(2);
  const adminToken = randomBytes(24).toString("hex");
  workDir = await mkdtemp(join(tmpdir(), "batch-scrape-results-bench-"));
  base = `http://127.0.0.1:${apiPort}`;
  wrangler = startWrangler({
    config: await benchConfig(workDir),
    script: "src/index.ts", // the config is a copy elsewhere: the entry point, relative to ROOT
    logLevel: "warn",
    port: apiPort,
    inspectorPort,
    persistTo: join(workDir, "state"),
    logDir: join(workDir, "logs"),
    vars: {
      ADMIN_TOKEN: adminToken,
      API_KEY_MAC_SECRET: randomBytes(32).toString("hex"),
      DISPATCH_PAUSED: "true",
      MAX_URLS_PER_BATCH: "100000",
      MAX_BODY_BYTES: "20000000",
    },
  });
  log(`wrangler dev on ${base} (process group ${wrangler.pgid})`);
  const deadline = Date.now() + BOUNDS.ready;
  let ready = false;
  while (!ready && Date.now() < deadline) {
    const exited = await Promise.race([wrangler.exited, sleep(250).then(() => null)]);
    if (exited) throw new Error(`wrangler exited early: ${tail(20).join("\n")}`);
    ready = await fetch(`${base}/healthz`, { signal: AbortSignal.timeout(2000) }).then(
      (r) => r.status < 500,
      () => false,
    );
  }
  must(ready, "wrangler ready", tail(20).join("\n"));
  const acct = await api("POST", "/admin/accounts", {
    headers: { authorization: `Bearer ${adminToken}` },
    body: { name: "results-bench", credits: 1_000_000_000 },
  });
  must(acct.status === 201, "account", acct);
  const key = { "x-api-key": acct.body.apiKey };

  const rows = [];
  const details = [];
  for (const n of SIZES) {
    const urls = Array.from({ length: n }, (_, i) => ({ url: `https://example.com/bench/${i}`, customId: `row-${i}` }));
    const created = await api("POST", "/api/batch/scrape", { headers: key, body: { urls, output: "markdown" } });
    must(created.status === 202, `create ${n}`, created);
    const batchId = created.body.batchId;
    await download(key, batchId, "ndjson"); // warm-up: the object's first wake, page cache
    const baseline = await withMemory(() => paged(key, batchId));
    must(baseline.value.lines === n, "paged count", baseline.value);
    const runs = {};
    for (const format of ["ndjson", "csv"]) {
      runs[format] = await withMemory(() => download(key, batchId, format));
      must(runs[format].value.lines === n, `${format} line count`, runs[format].value);
    }
    const label = `${n / 1000}k`;
    const per10k = (ms) => (ms * 10_000) / n;
    for (const format of ["ndjson", "csv"]) {
      const r = runs[format];
      rows.push(
        {
          section: "results",
          what: `download ${format}, ${label} items: time per 10k lines`,
          value: per10k(r.ms),
          unit: "ms",
          baseline: `paged GET (${PAGE}/page), per 10k items`,
          baselineValue: per10k(baseline.ms),
          ratio: r.ms / baseline.ms,
          note: `${(r.value.bytes / n).toFixed(0)} B/line`,
        },
        {
          section: "results",
          what: `download ${format}, ${label} items: workerd RSS growth (peak - before)`,
          value: r.rssPeak - r.rssBefore,
          unit: "bytes",
          baseline: `paged GET, ${label} items`,
          baselineValue: Math.max(1, baseline.rssPeak - baseline.rssBefore),
          ratio: (r.rssPeak - r.rssBefore) / Math.max(1, baseline.rssPeak - baseline.rssBefore),
          note: `${(r.value.bytes / 1e6).toFixed(1)} MB streamed; RSS before ${(r.rssBefore / 1e6).toFixed(0)} MB`,
        },
      );
    }
    details.push({ items: n, baseline, runs });
    log(`${label}: ${JSON.stringify(rows.slice(-4).map((r) => [r.what, Math.round(r.value)]))}`);
  }
  return { rows, details };
}

let exitCode = 0;
try {
  const result = await main();
  if (JSON_OUT) await writeFile(JSON_OUT, JSON.stringify(result, null, 2));
  else console.log(JSON.stringify(result.rows, null, 2));
} catch (err) {
  console.error(`[results ${elapsed()}] failed: ${err?.stack ?? err}`);
  if (wrangler) for (const line of tail(30)) console.error(`  | ${line}`);
  exitCode = 1;
} finally {
  clearTimeout(watchdog);
  await cleanup();
  const stopped = !wrangler || !groupAlive(wrangler.pgid);
  log(stopped ? "wrangler stopped" : "WARNING: wrangler's process group is still alive");
  if (!stopped) exitCode = 1;
}
process.exit(exitCode);
