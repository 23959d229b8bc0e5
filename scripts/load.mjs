// A bounded load run against a real `wrangler dev` on 127.0.0.1 (part of `npm run reliability`).
//
// Starts a local target server and `wrangler dev` (own state dir, random admin token,
// ALLOW_LOOPBACK_TARGETS), then for LOAD_SECONDS (default 20) runs LOAD_CONCURRENCY (default 8)
// loops mixing creates (some with Idempotency-Keys, some replayed, some with URLs that 404),
// reads, lists, cancels and retries over a few accounts while the items really execute.
// Then it waits until every batch is terminal and checks the books: no 5xx, every batch
// terminal, and credit drift 0, i.e. for every account granted - balance - reserved - used = 0,
// reserved - credits of unfinished items = 0, and the ledger sums to the balances.
// Prints a summary and one `[load] {json}` line; exits non-zero if any check fails.
// Every process it starts is stopped at the end (also on failure, timeout or Ctrl-C).
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  freePorts,
  groupAlive,
  signalGroup,
  sleep,
  snapshotWorker,
  startWrangler,
  stopGroup,
} from "./lib/wrangler.mjs";
import { startTargetServer } from "./target-server.mjs";
import { requestJson } from "./lib/http.mjs";

const SECONDS = Number(process.env.LOAD_SECONDS) || 20;
const CONCURRENCY = Number(process.env.LOAD_CONCURRENCY) || 8;
const ACCOUNTS = 4;
const KEYS_PER_ACCOUNT = 4;
/** Hard caps whatever the settings: requests sent in the load phase, and the whole run. */
const MAX_REQUESTS = 50_000;
const TOTAL_MS = (SECONDS + 240) * 1000;
const READY_MS = 60_000;
const SETTLE_MS = 150_000;
const REQUEST_MS = 15_000;
/** Each target page answers after this long: items overlap with creates and cancels. */
const PAGE_DELAY_MS = 150;

const stats = { requests: 0, byStatus: {}, fiveXx: [], networkErrors: 0, latencies: [] };
let wrangler;
let target;
let workDir;
let base;
let adminToken;
let cleaning;
const stop = new AbortController();
const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;

// ---------------------------------------------------------------- HTTP

async function api(method, path, { body, headers, count = true } = {}) {
  if (count) stats.requests++;
  const t0 = performance.now();
  let res;
  try {
    res = await requestJson(`${base}${path}`, method, {
      body,
      headers,
      signal: AbortSignal.any([AbortSignal.timeout(REQUEST_MS), stop.signal]),
    });
  } catch (err) {
    if (count) stats.networkErrors++;
    return { status: 0, body: undefined, error: String(err?.cause?.code ?? err?.name ?? err) };
  }
  if (count) {
    stats.latencies.push(performance.now() - t0);
    stats.byStatus[res.status] = (stats.byStatus[res.status] ?? 0) + 1;
    if (res.status >= 500 && stats.fiveXx.length < 20)
      stats.fiveXx.push({ method, path, status: res.status, body: res.text.slice(0, 300) });
  }
  return res;
}

const admin = () => ({ authorization: `Bearer ${adminToken}` });
const pick = (list) => list[Math.floor(Math.random() * list.length)];

// ---------------------------------------------------------------- the mix

/** accounts[i] = { accountId, keys: [apiKey], batches: Set<batchId>, creates: [{ key, body }] } */
const accounts = [];

async function openAccounts() {
  for (let i = 0; i < ACCOUNTS; i++) {
    const r = await api("POST", "/admin/accounts", {
      headers: admin(),
      body: { name: `load-${i}`, credits: 1_000_000 },
      count: false,
    });
    if (r.status !== 201) throw new Error(`account not created: ${r.status} ${JSON.stringify(r.body)}`);
    const keys = [r.body.apiKey];
    for (let k = 1; k < KEYS_PER_ACCOUNT; k++) {
      const key = await api("POST", `/admin/accounts/${r.body.accountId}/keys`, {
        headers: admin(),
        body: {},
        count: false,
      });
      if (key.status !== 201) throw new Error(`key not created: ${key.status}`);
      keys.push(key.body.apiKey);
    }
    accounts.push({ accountId: r.body.accountId, keys, batches: new Set(), creates: [] });
  }
}

function createBody() {
  const n = 1 + Math.floor(Math.random() * 8);
  const urls = Array.from({ length: n }, () => {
    const page = Math.floor(Math.random() * 1000);
    // About one URL in eight answers 404: its item fails and is refunded (and can be retried).
    return Math.random() < 0.125 ? `${target.url}/missing/${page}` : `${target.url}/page/${page}`;
  });
  return { urls, output: Math.random() < 0.5 ? "json" : "markdown", maxConcurrency: 1 + Math.floor(Math.random() * 5) };
}

const OPS = [
  [
    20,
    async (a, key) => {
      const replay = a.creates.length > 0 && Math.random() < 0.15 ? pick(a.creates) : null;
      const idem = replay?.key ?? (Math.random() < 0.3 ? `load-${randomBytes(8).toString("hex")}` : null);
      const body = replay?.body ?? createBody();
      const r = await api("POST", "/api/batch/scrape", {
        headers: { "x-api-key": key, ...(idem ? { "idempotency-key": idem } : {}) },
        body,
      });
      if (r.status === 202) {
        a.batches.add(r.body.batchId);
        if (idem && !replay) a.creates.push({ key: idem, body });
      }
    },
  ],
  [
    25,
    async (a, key) => {
      const id = pick([...a.batches]);
      if (id) await api("GET", `/api/batch/scrape/${id}?limit=20`, { headers: { "x-api-key": key } });
    },
  ],
  [
    10,
    async (_a, key) =>
      api("GET", `/api/batch/scrape?limit=${1 + Math.floor(Math.random() * 50)}`, { headers: { "x-api-key": key } }),
  ],
  [
    10,
    async (_a, key) =>
      api("GET", Math.random() < 0.5 ? "/api/credits" : "/api/credits/ledger?limit=20", {
        headers: { "x-api-key": key },
      }),
  ],
  [
    20,
    async (a, key) => {
      const id = pick([...a.batches]);
      if (id) await api("DELETE", `/api/batch/scrape/${id}`, { headers: { "x-api-key": key } });
    },
  ],
  [
    15,
    async (a, key) => {
      const id = pick([...a.batches]);
      if (id) await api("POST", `/api/batch/scrape/${id}/retry`, { headers: { "x-api-key": key } });
    },
  ],
];
const WEIGHT = OPS.reduce((n, [w]) => n + w, 0);

function chooseOp() {
  let r = Math.random() * WEIGHT;
  for (const [w, op] of OPS) {
    r -= w;
    if (r < 0) return op;
  }
  return OPS[0][1];
}

async function loadPhase() {
  const until = Date.now() + SECONDS * 1000;
  const loop = async () => {
    while (Date.now() < until && stats.requests < MAX_REQUESTS && !stop.signal.aborted) {
      const a = pick(accounts);
      await chooseOp()(a, pick(a.keys));
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, loop));
}

// ---------------------------------------------------------------- the books

async function allBatches(a) {
  const ids = new Set(a.batches);
  for (let page = 1; page <= 200; page++) {
    const r = await api("GET", `/api/batch/scrape?page=${page}&limit=50`, {
      headers: { "x-api-key": a.keys[0] },
      count: false,
    });
    if (r.status !== 200) throw new Error(`list: ${r.status}`);
    for (const j of r.body.jobs) ids.add(j.uuid);
    if (page >= r.body.pagination.totalPages) break;
  }
  return [...ids];
}

async function readBatch(a, id) {
  const r = await api("GET", `/api/batch/scrape/${id}?limit=1`, { headers: { "x-api-key": a.keys[0] }, count: false });
  if (r.status !== 200) throw new Error(`GET batch ${id}: ${r.status}`);
  return r.body;
}

async function ledgerSums(a) {
  const sums = { grant: 0, reserve: 0, consume: 0, refund: 0 };
  let cursor = null;
  for (let page = 0; page < 10_000; page++) {
    const r = await api("GET", `/api/credits/ledger?limit=100${cursor ? `&cursor=${cursor}` : ""}`, {
      headers: { "x-api-key": a.keys[0] },
      count: false,
    });
    if (r.status !== 200) throw new Error(`ledger: ${r.status}`);
    for (const e of r.body.entries) sums[e.kind] += e.amount;
    cursor = r.body.nextCursor;
    if (!cursor) break;
  }
  return sums;
}

/** Waits (bounded) until every batch is terminal with nothing running, then until the books settle. */
async function settle() {
  const deadline = Date.now() + SETTLE_MS;
  let open = [];
  let batches = 0;
  while (Date.now() < deadline) {
    open = [];
    batches = 0;
    for (const a of accounts) {
      for (const id of await allBatches(a)) {
        batches++;
        const b = await readBatch(a, id);
        if (!["completed", "failed", "cancelled"].includes(b.status) || b.runningCount > 0 || b.pendingCount > 0)
          open.push({ id, status: b.status, pending: b.pendingCount, running: b.runningCount });
      }
    }
    if (open.length === 0) break;
    console.log(`[${elapsed()}] ${open.length} of ${batches} batches not finished yet`);
    await sleep(2000);
  }
  // Terminal everywhere; outboxes may still be on their way to the accounts: poll the books.
  let report;
  while (Date.now() < deadline) {
    report = await books();
    if (report.drift === 0) break;
    await sleep(1000);
  }
  return { open, batches, report: report ?? (await books()) };
}

async function books() {
  let drift = 0;
  const perAccount = [];
  for (const a of accounts) {
    const c = (await api("GET", "/api/credits", { headers: { "x-api-key": a.keys[0] }, count: false })).body;
    let held = 0;
    let batchDrift = 0;
    for (const id of await allBatches(a)) {
      const b = await readBatch(a, id);
      const unfinished = (b.pendingCount + b.runningCount) * b.creditsPerItem;
      held += unfinished;
      batchDrift += Math.abs(b.creditsReserved - b.creditsUsed - b.creditsRefunded - unfinished);
    }
    const l = await ledgerSums(a);
    const d = {
      books: c.granted - c.balance - c.reserved - c.used,
      held: c.reserved - held,
      batches: batchDrift,
      ledger:
        Math.abs(l.grant - c.granted) +
        Math.abs(l.consume - c.used) +
        Math.abs(l.reserve - l.consume - l.refund - c.reserved),
    };
    drift += Math.abs(d.books) + Math.abs(d.held) + d.batches + d.ledger;
    perAccount.push({ accountId: a.accountId, credits: c, drift: d });
  }
  return { drift, perAccount };
}

// ---------------------------------------------------------------- run

async function run() {
  target = await startTargetServer({ delayMs: PAGE_DELAY_MS });
  const [port, inspectorPort] = await freePorts(2);
  adminToken = randomBytes(24).toString("hex");
  workDir = await mkdtemp(join(tmpdir(), "batch-scrape-load-"));
  base = `http://127.0.0.1:${port}`;
  // A snapshot: edits to src/ during the run must not reload the Worker (a reload drops queued messages).
  const config = await snapshotWorker(workDir);
  wrangler = startWrangler({
    config,
    port,
    inspectorPort,
    persistTo: join(workDir, "state"),
    logDir: join(workDir, "logs"),
    vars: {
      ADMIN_TOKEN: adminToken,
      API_KEY_MAC_SECRET: randomBytes(32).toString("hex"),
      ALLOW_LOOPBACK_TARGETS: "true",
      RETRY_BASE_DELAY_MS: "200",
      FETCH_TIMEOUT_MS: "5000",
    },
  });
  wrangler.exited.then((e) => {
    wrangler.exit = e;
    if (!cleaning) stop.abort(new Error(`wrangler exited: ${JSON.stringify(e)}`));
  });
  console.log(`[${elapsed()}] target ${target.url}, wrangler dev ${base} (pid ${wrangler.pgid})`);

  const ready = Date.now() + READY_MS;
  for (;;) {
    if (wrangler.exit || wrangler.buildError)
      throw new Error(`wrangler did not start: ${wrangler.buildError ?? JSON.stringify(wrangler.exit)}`);
    const r = await Promise.race([
      api("GET", "/healthz", { count: false }),
      wrangler.buildFailed.then(() => ({ status: -1 })),
    ]);
    if (r.status === 200) break;
    if (Date.now() > ready) throw new Error("wrangler dev did not answer /healthz in time");
    await sleep(250);
  }
  console.log(
    `[${elapsed()}] ready; ${ACCOUNTS} accounts x ${KEYS_PER_ACCOUNT} keys, ${CONCURRENCY} loops for ${SECONDS} s`,
  );
  await openAccounts();
  await loadPhase();
  console.log(`[${elapsed()}] load phase done: ${stats.requests} requests ${JSON.stringify(stats.byStatus)}`);
  const settled = await settle();
  return settled;
}

async function cleanup(keepLogs) {
  cleaning ??= (async () => {
    stop.abort(new Error("stopping"));
    let stopped = true;
    if (wrangler?.pgid) stopped = await stopGroup(wrangler.pgid, 5_000);
    if (target) await Promise.race([target.close(), sleep(2_000)]);
    // On failure the state (the objects' SQLite files) and wrangler's log stay, to look into.
    if (workDir && !keepLogs) await rm(workDir, { recursive: true, force: true, maxRetries: 3 }).catch(() => {});
    if (keepLogs && workDir) console.log(`wrangler's state and debug log kept in ${workDir}`);
    return stopped;
  })();
  return cleaning;
}

process.on("exit", () => {
  if (wrangler?.pgid && groupAlive(wrangler.pgid)) signalGroup(wrangler.pgid, "SIGKILL");
});
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.once(sig, async () => {
    console.log(`${sig}: stopping`);
    await cleanup(false);
    process.exit(130);
  });
}
const watchdog = setTimeout(async () => {
  console.log(`TIMEOUT after ${TOTAL_MS / 1000} s`);
  await cleanup(true);
  process.exit(1);
}, TOTAL_MS);

let result;
let failure;
try {
  result = await run();
} catch (err) {
  failure = err?.stack ?? String(err);
}
clearTimeout(watchdog);
const fiveXx = Object.entries(stats.byStatus)
  .filter(([s]) => Number(s) >= 500)
  .reduce((n, [, c]) => n + c, 0);
const ok =
  !failure && fiveXx === 0 && stats.networkErrors === 0 && result.open.length === 0 && result.report.drift === 0;
if (!ok && wrangler) {
  console.log("--- last 30 lines of wrangler output ---");
  for (const line of wrangler.log
    .filter((l) => !/\[wrangler:info\] (GET|POST|DELETE) \S+ [234]\d\d /.test(l))
    .slice(-30))
    console.log(`  | ${line}`);
}
const stopped = await cleanup(!ok);
const sorted = [...stats.latencies].sort((x, y) => x - y);
const percentile = (p) =>
  sorted.length === 0 ? null : Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]);
const summary = {
  requests: stats.requests,
  p50ms: percentile(50),
  p99ms: percentile(99),
  fiveXx,
  networkErrors: stats.networkErrors,
  byStatus: stats.byStatus,
  batches: result?.batches ?? 0,
  notTerminal: result?.open.length ?? null,
  drift: result?.report.drift ?? null,
  seconds: SECONDS,
  concurrency: CONCURRENCY,
  wranglerStopped: stopped,
};
if (failure) console.log(`load run failed: ${failure}`);
for (const f of stats.fiveXx) console.log(`5xx: ${JSON.stringify(f)}`);
if (result && result.open.length > 0) console.log(`not terminal: ${JSON.stringify(result.open.slice(0, 10))}`);
if (result && result.report.drift !== 0) console.log(`drift: ${JSON.stringify(result.report.perAccount)}`);
console.log(
  `load: ${summary.requests} requests in ${SECONDS} s (${JSON.stringify(stats.byStatus)}; p50 ${summary.p50ms} ms, p99 ${summary.p99ms} ms), ` +
    `${fiveXx} 5xx, ${summary.batches} batches, ` +
    `${summary.notTerminal ?? "?"} not terminal, credit drift ${summary.drift ?? "?"} (${elapsed()})`,
);
console.log(`[load] ${JSON.stringify(summary)}`);
process.exit(ok && stopped ? 0 : 1);
