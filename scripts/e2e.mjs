// End-to-end story against a real `wrangler dev` (run with `npm run e2e`).
//
// Starts a slow local target server and `wrangler dev` (own state dir, random admin token),
// then plays the seed's story through HTTP only: a 10-URL batch with maxConcurrency 2, a
// cancel while 2 items run, the running ones finishing and charged, the other 8 refunded.
// Every process it starts is stopped at the end, also on failure, timeout or Ctrl-C; it
// exits non-zero unless every check passed. Network: 127.0.0.1 only. Node built-ins only.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { freePorts, sleep, startWrangler, stopGroup } from "./lib/wrangler.mjs";
import { startTargetServer } from "./target-server.mjs";
import { createChecks, runStory, show, StoryStopped, storyEnd } from "./lib/checks.mjs";

/** How long each target page takes to answer: long enough to cancel while 2 items run. */
const DELAY_MS = 4000;
/** The executor's fetch timeout: well above DELAY_MS, so no attempt times out and retries. */
const FETCH_TIMEOUT_MS = 15_000;
const URL_COUNT = 10;

const BOUNDS = {
  ready: 60_000, // wrangler dev answers GET /healthz
  running: 30_000, // runningCount reaches 2
  drained: 60_000, // runningCount back to 0 after the cancel
  credits: 5_000, // outbox settles the account
  request: 10_000, // any single HTTP request
  stopGrace: 5_000, // SIGTERM -> SIGKILL for the process group
  total: 240_000, // the whole run, whatever happens
};
const POLL_MS = 100;

// ---------------------------------------------------------------- checks and output

const { results, elapsed, check, housekeeping, must, step } = createChecks();


// ---------------------------------------------------------------- processes we own

let wrangler; // { child, pgid, exited: Promise, exit, log: string[], buildError, buildFailed: Promise }
let target;
let workDir; // <tmp>/batch-scrape-e2e-XXXX: state/ (wrangler --persist-to) and logs/ (wrangler's debug log)
let cleaning;

const POLL_NOISE = /^\[wrangler:info\] GET \S+ 200 OK/;

/**
 * Stops everything this script started. Idempotent; bounded in time. On failure wrangler's
 * debug log is kept. Resolves to false if wrangler's process group outlived SIGKILL.
 */
function cleanup(keepLogs = false) {
  cleaning ??= (async () => {
    let stopped = true;
    if (wrangler?.pgid) {
      stopped = await stopGroup(wrangler.pgid, BOUNDS.stopGrace, () =>
        console.log(`[${elapsed()}] wrangler did not stop on SIGTERM within ${BOUNDS.stopGrace} ms: SIGKILL`),
      );
    }
    if (target) await Promise.race([target.close(), sleep(2_000)]);
    if (workDir) {
      const removed = keepLogs ? join(workDir, "state") : workDir;
      await rm(removed, { recursive: true, force: true, maxRetries: 3 }).catch(() => {});
      if (keepLogs) console.log(`[${elapsed()}] wrangler's debug log kept in ${join(workDir, "logs")}`);
    }
    return stopped;
  })();
  return cleaning;
}

// ---------------------------------------------------------------- HTTP

let base;
/** Aborted when wrangler dies or the run is being stopped: no request outlives the run. */
const stopRequests = new AbortController();

async function api(method, path, { body, headers = {}, timeoutMs = BOUNDS.request } = {}) {
  let res;
  let text;
  try {
    res = await fetch(`${base}${path}`, {
      method,
      headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.any([AbortSignal.timeout(Math.min(timeoutMs, BOUNDS.request)), stopRequests.signal]),
      redirect: "manual",
    });
    text = await res.text();
  } catch (err) {
    if (stopRequests.signal.aborted) throw new StoryStopped(stopRequests.signal.reason?.message ?? "stopped");
    throw new Error(`${method} ${path}: ${err?.cause?.code ?? err?.name ?? "error"}: ${err?.message ?? err}`);
  }
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, body: json ?? text };
}

/**
 * Calls `read({ timeoutMs })` every `intervalMs` until `done(value)` or `timeoutMs` passes (bounded in
 * count too). Errors from `read` count as "not yet" (but StoryStopped ends the story). Returns the last value read.
 */
async function pollUntil(read, done, { timeoutMs, intervalMs = POLL_MS }) {
  const deadline = Date.now() + timeoutMs;
  const maxRounds = Math.ceil(timeoutMs / intervalMs) + 1;
  let last;
  let lastError;
  for (let round = 0; round < maxRounds; round++) {
    try {
      last = await read({ timeoutMs: Math.max(250, deadline - Date.now()) });
      lastError = undefined;
      if (done(last)) return { ok: true, value: last };
    } catch (err) {
      if (err instanceof StoryStopped) throw err;
      lastError = err;
    }
    if (Date.now() + intervalMs > deadline) break;
    await sleep(intervalMs);
  }
  return { ok: false, value: last, error: lastError };
}

const pick = (obj, keys) => Object.fromEntries(keys.map((k) => [k, obj?.[k]]));
const COUNTS = ["status", "pendingCount", "runningCount", "completedCount", "failedCount", "cancelledCount", "creditsUsed", "creditsRefunded"];

// ---------------------------------------------------------------- the story

async function story() {
  step("start: target server, wrangler dev");
  target = await startTargetServer({ delayMs: DELAY_MS });
  console.log(`  target server on ${target.url} (pages answer after ${DELAY_MS} ms)`);

  const [apiPort, inspectorPort] = await freePorts(2);
  const adminToken = randomBytes(24).toString("hex");
  workDir = await mkdtemp(join(tmpdir(), "batch-scrape-e2e-"));
  base = `http://127.0.0.1:${apiPort}`;
  wrangler = startWrangler({
    port: apiPort,
    inspectorPort,
    persistTo: join(workDir, "state"),
    logDir: join(workDir, "logs"),
    vars: { ADMIN_TOKEN: adminToken, API_KEY_MAC_SECRET: randomBytes(32).toString("hex"), ALLOW_LOOPBACK_TARGETS: "true", FETCH_TIMEOUT_MS: String(FETCH_TIMEOUT_MS) },
  });
  wrangler.exited.then((e) => {
    wrangler.exit = e;
    if (!cleaning) {
      console.log(`[${elapsed()}] wrangler exited unexpectedly: ${show(e)}`);
      stopRequests.abort(new Error(`wrangler exited unexpectedly: ${show(e)}`));
    }
  });
  console.log(`  wrangler dev on ${base} (pid ${wrangler.pgid}, state in ${join(workDir, "state")})`);

  // A build error before the first successful start is final here: stop at once rather
  // than wait for an edit that fixes it. (Each /healthz request hangs while the build is broken.)
  const healthz = (opts) =>
    Promise.race([api("GET", "/healthz", opts).then((r) => r.status), wrangler.buildFailed.then(() => "build failed")]);
  const ready = await pollUntil(
    async (opts) => (wrangler.exit ? "exited" : wrangler.buildError !== null ? "build failed" : await healthz(opts)),
    (s) => s === 200 || s === "exited" || s === "build failed",
    { timeoutMs: BOUNDS.ready, intervalMs: 250 },
  );
  must(
    `GET /healthz answers 200 within ${BOUNDS.ready / 1000} s`,
    ready.value === 200 && !wrangler.exit,
    wrangler.exit
      ? `wrangler exited early: ${show(wrangler.exit)}`
      : ready.value === "build failed"
        ? `wrangler could not build the Worker: ${wrangler.buildError} (see its output below)`
        : (ready.error?.message ?? ready.value),
  );
  console.log(`  ready after ${elapsed()}`);

  step("POST /admin/accounts");
  const acct = await api("POST", "/admin/accounts", { headers: { authorization: `Bearer ${adminToken}` }, body: { name: "e2e", credits: 100 } });
  must(
    "account created: 201 with accountId, apiKey, keyId, credits",
    acct.status === 201 && typeof acct.body?.accountId === "string" && typeof acct.body?.apiKey === "string" && typeof acct.body?.keyId === "string" && acct.body?.credits?.balance === 100,
    acct,
  );
  const key = { "x-api-key": acct.body.apiKey };
  console.log(`  account ${acct.body.accountId}, key ${acct.body.keyId}`);

  step(`POST /api/batch/scrape: ${URL_COUNT} URLs, maxConcurrency 2, output json`);
  const urls = Array.from({ length: URL_COUNT }, (_, i) => `${target.url}/page/${i}`);
  const created = await api("POST", "/api/batch/scrape", { headers: key, body: { urls, maxConcurrency: 2, output: "json" } });
  must(
    `batch created: 202 { status: "queued", batchId, total: ${URL_COUNT} }`,
    created.status === 202 && created.body?.status === "queued" && typeof created.body?.batchId === "string" && created.body?.total === URL_COUNT,
    created,
  );
  const batchId = created.body.batchId;
  const batchPath = `/api/batch/scrape/${batchId}`;
  console.log(`  batch ${batchId}`);

  const afterCreate = await api("GET", "/api/credits", { headers: key });
  check("credits after create: balance 80, reserved 20", afterCreate.status === 200 && afterCreate.body?.balance === 80 && afterCreate.body?.reserved === 20, afterCreate);

  const getBatch = async (opts) => {
    const r = await api("GET", batchPath, { headers: key, ...opts });
    if (r.status !== 200) throw new Error(`GET ${batchPath}: ${r.status} ${show(r.body)}`);
    return r.body;
  };

  step(`poll GET ${batchPath} every ${POLL_MS} ms until runningCount === 2`);
  const running = await pollUntil(getBatch, (b) => b.runningCount === 2, { timeoutMs: BOUNDS.running });
  must(`runningCount reaches 2 within ${BOUNDS.running / 1000} s`, running.ok, running.value ? pick(running.value, COUNTS) : running.error?.message);
  console.log(`  ${show(pick(running.value, COUNTS))}`);
  check("pendingCount === 8 while 2 run", running.value.pendingCount === 8, pick(running.value, COUNTS));

  step(`DELETE ${batchPath}`);
  const cancelled = await api("DELETE", batchPath, { headers: key });
  const expectedCancel = { status: "cancelled", cancelledItems: 8, creditsRefunded: 16 };
  check(`cancel: 200 exactly ${show(expectedCancel)}`, cancelled.status === 200 && isDeepStrictEqual(cancelled.body, expectedCancel), cancelled);

  step("poll until runningCount === 0 (the 2 running items finish)");
  const drained = await pollUntil(getBatch, (b) => b.runningCount === 0, { timeoutMs: BOUNDS.drained });
  must(`runningCount back to 0 within ${BOUNDS.drained / 1000} s`, drained.ok, drained.value ? pick(drained.value, COUNTS) : drained.error?.message);
  const after = drained.value;
  console.log(`  ${show(pick(after, [...COUNTS, "finishedAt"]))}`);
  check("completedCount === 2", after.completedCount === 2, pick(after, COUNTS));
  check("cancelledCount === 8", after.cancelledCount === 8, pick(after, COUNTS));
  check("creditsUsed === 4", after.creditsUsed === 4, pick(after, COUNTS));
  check('status === "cancelled"', after.status === "cancelled", pick(after, COUNTS));
  check("finishedAt is set", typeof after.finishedAt === "string" && after.finishedAt.length > 0, after.finishedAt);

  const items = Array.isArray(after.items) ? after.items : [];
  const completed = items.filter((i) => i.status === "completed");
  const cancelledItem = items.find((i) => i.status === "cancelled");
  check(
    "both completed items carry a result (or resultUrl)",
    completed.length === 2 && completed.every((i) => (i.result !== null && i.result !== undefined) || typeof i.resultUrl === "string"),
    completed.map((i) => pick(i, ["uuid", "url", "status", "result", "resultUrl", "error"])),
  );

  step("GET .../items/<itemId>/result");
  const resultStatuses = [];
  for (const item of completed) {
    const r = await api("GET", `${batchPath}/items/${item.uuid}/result`, { headers: key });
    resultStatuses.push({ url: item.url, status: r.status, body: show(r.body).slice(0, 200) });
    console.log(`  ${item.url} -> ${r.status} ${show(r.body).slice(0, 160)}`);
  }
  check("result answers 200 for both completed items", completed.length === 2 && resultStatuses.every((r) => r.status === 200), resultStatuses);
  if (cancelledItem) {
    const r = await api("GET", `${batchPath}/items/${cancelledItem.uuid}/result`, { headers: key });
    console.log(`  ${cancelledItem.url} (cancelled) -> ${r.status} ${show(r.body).slice(0, 160)}`);
    check("result answers 404 for a cancelled item", r.status === 404, r);
  } else {
    check("result answers 404 for a cancelled item", false, "no cancelled item in the batch's first page of items");
  }

  step(`wait ${(2 * DELAY_MS) / 1000} s more: nothing else may reach the target`);
  await sleep(2 * DELAY_MS);
  const hits = Object.fromEntries(target.hits);
  const pageHits = [...target.hits].filter(([p]) => p.startsWith("/page/")).reduce((n, [, c]) => n + c, 0);
  console.log(`  target hits: ${show(hits)}`);
  check("target saw exactly 2 page requests in total", pageHits === 2, hits);
  const hitPaths = [...target.hits.keys()].filter((p) => p.startsWith("/page/")).sort();
  const completedPaths = completed.map((i) => new URL(i.url).pathname).sort();
  check("the pages fetched are the completed items' URLs", isDeepStrictEqual(hitPaths, completedPaths), { hitPaths, completedPaths });

  step(`GET /api/credits (polled up to ${BOUNDS.credits / 1000} s for the outbox)`);
  const expectedCredits = { balance: 96, reserved: 0, used: 4, refunded: 16, granted: 100 };
  const settled = await pollUntil(
    async (opts) => (await api("GET", "/api/credits", { headers: key, ...opts })).body,
    (c) => isDeepStrictEqual(pick(c, Object.keys(expectedCredits)), expectedCredits),
    { timeoutMs: BOUNDS.credits },
  );
  const credits = settled.value;
  console.log(`  ${show(credits)}`);
  check(`credits: ${show(expectedCredits)}`, settled.ok, credits ?? settled.error?.message);
  check(
    "invariant: granted === balance + reserved + used",
    credits !== undefined && Number.isInteger(credits.granted) && credits.granted === credits.balance + credits.reserved + credits.used,
    credits,
  );

  step("GET /api/credits/ledger?limit=100");
  const ledger = await api("GET", "/api/credits/ledger?limit=100", { headers: key });
  const entries = Array.isArray(ledger.body?.entries) ? ledger.body.entries.filter((e) => e.batchId === batchId) : [];
  for (const e of entries) console.log(`  ${e.kind} ${e.amount}${e.itemId ? ` item ${e.itemId}` : ""}${e.note ? ` (${e.note})` : ""}`);
  const ofKind = (kind) => entries.filter((e) => e.kind === kind);
  const brief = entries.map((e) => pick(e, ["kind", "amount", "itemId", "note"]));
  check("ledger: one reserve of 20 for the batch", ledger.status === 200 && ofKind("reserve").length === 1 && ofKind("reserve")[0].amount === 20, ledger.status === 200 ? brief : ledger);
  check("ledger: one refund of 16 for the batch", ofKind("refund").length === 1 && ofKind("refund")[0].amount === 16, brief);
  check("ledger: consume entries sum to 4", ofKind("consume").reduce((n, e) => n + e.amount, 0) === 4, brief);
}

// ---------------------------------------------------------------- main

const { finish, finishing } = storyEnd({
  name: "e2e",
  totalMs: BOUNDS.total,
  checks: { results, check, elapsed, housekeeping },
  wrangler: () => wrangler,
  cleanup,
  stopping: "wrangler and the target server",
  onStop: () => stopRequests.abort(new Error("stopping")),
  // Our own polling fills wrangler's access log.
  noise: POLL_NOISE,
});
await runStory(story, { results, check, finish, finishing });
