// A Spidra user's day against this service (run with `npm run test:spidra`).
//
// Starts a slow local target server and `wrangler dev` (own state dir, random admin token),
// makes an account through the admin API, then does only what a Spidra user does, over HTTP,
// each call sent as Spidra's Node SDK sends it (base URL `<service>/api`, the key in a header,
// JSON bodies, retry with `{}`): submit with the documented fields, watch by polling the batch
// (never paging: every item must come back), cancel mid-run with exact counts and refunds,
// cancel again (409 ALREADY_TERMINAL), retry failed items until they complete, list, read the
// usage stats, and the documented errors (401, 403 for a wrong key and for no credits, 404).
// Prints `spidra: N checks passed, M failed` last. Network: 127.0.0.1 only. Node built-ins only.
import { isDeepStrictEqual } from "node:util";
import { show } from "./lib/checks.mjs";
import { createStoryRun } from "./lib/story-run.mjs";
import { pageHtml, startTargetServer } from "./target-server.mjs";

// ---- the two switches the lead flips after merging the other helpers' branches ----
/** Helper "auth": Bearer keys. When true, every call sends `Authorization: Bearer <key>` instead of x-api-key. */
const USE_BEARER = true;
/**
 * Helper "fields": Spidra's other create fields. When true, creates also send the documented
 * fields that are valid with AI off, and the story expects a 4xx naming `prompt` (AI off locally).
 */
const FIELDS_LANDED = true;

const DELAY_MS = 4000; // slow pages: long enough to cancel while the first five run
const FETCH_TIMEOUT_MS = 15_000;
const PER_ITEM = 2; // json
const DEFAULT_CONCURRENCY = 5; // Spidra's SDK sends no maxConcurrency: the service's default
const BOUNDS = {
  ready: 60_000,
  running: 30_000,
  drained: 60_000,
  terminal: 60_000,
  settle: 10_000,
  request: 10_000,
  total: 300_000,
};

const run = createStoryRun({ name: "spidra", totalMs: BOUNDS.total, requestMs: BOUNDS.request });
const { check, must, step, api, pollUntil } = run;
const pick = (obj, keys) => Object.fromEntries(keys.map((k) => [k, obj?.[k]]));
const COUNTS = [
  "status",
  "totalUrls",
  "completedCount",
  "failedCount",
  "pendingCount",
  "runningCount",
  "cancelledCount",
];

/** The SDK's headers for a key (x-api-key; Bearer once helper "auth" has landed and USE_BEARER is on). */
function authHeaders(apiKey) {
  return USE_BEARER ? { authorization: `Bearer ${apiKey}` } : { "x-api-key": apiKey };
}

/** Spidra's documented item fields and their types (api-reference/scraping/batch-scrape-status). */
function documentedItem(i) {
  const strOrNull = (v) => v === null || typeof v === "string";
  return (
    typeof i?.uuid === "string" &&
    typeof i.url === "string" &&
    strOrNull(i.jobId) &&
    ["pending", "running", "completed", "failed", "cancelled"].includes(i.status) &&
    "result" in i &&
    strOrNull(i.error) &&
    Number.isInteger(i.creditsUsed) &&
    strOrNull(i.startedAt) &&
    strOrNull(i.finishedAt) &&
    strOrNull(i.screenshotUrl)
  );
}

async function story() {
  step("start: target server, wrangler dev");
  // /flaky/<n>: 404 on the first request, the page after (a failure that a retry mends).
  const flakyHits = new Map();
  const routes = new Map();
  for (const n of [1, 2]) {
    routes.set(`/flaky/${n}`, (_req, res) => {
      const seen = (flakyHits.get(n) ?? 0) + 1;
      flakyHits.set(n, seen);
      if (seen === 1) res.writeHead(404, { "Content-Type": "text/plain" }).end("not yet\n");
      else res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" }).end(pageHtml(100 + n));
    });
  }
  const target = await startTargetServer({ delayMs: DELAY_MS, routes });
  run.onCleanup(() => target.close());
  const { adminToken } = await run.startWorker({
    readyMs: BOUNDS.ready,
    vars: { ALLOW_LOOPBACK_TARGETS: "true", FETCH_TIMEOUT_MS: String(FETCH_TIMEOUT_MS) },
  });
  console.log(`  auth: ${USE_BEARER ? "Authorization: Bearer" : "x-api-key"}; extra create fields: ${FIELDS_LANDED}`);

  step("an account (admin API; the rest is the user's)");
  const acct = await api("POST", "/admin/accounts", {
    headers: { authorization: `Bearer ${adminToken}` },
    body: { name: "spidra-user", credits: 1000 },
  });
  must("account created", acct.status === 201 && typeof acct.body?.apiKey === "string", acct);
  const key = authHeaders(acct.body.apiKey);
  const sdk = (method, path, body) =>
    api(method, `/api${path}`, { headers: key, body: method === "POST" ? (body ?? {}) : undefined });
  const extras = FIELDS_LANDED
    ? { useProxy: false, screenshot: false, fullPageScreenshot: false, extractContentOnly: false }
    : {};

  if (FIELDS_LANDED) {
    step("batch.submit with a prompt while AI is off: refused, naming prompt, nothing reserved");
    const refused = await sdk("POST", "/batch/scrape", { urls: [`${target.url}/page/0`], prompt: "Extract the title" });
    check(
      "4xx whose message names prompt",
      refused.status >= 400 && refused.status < 500 && /prompt/.test(refused.body?.message ?? ""),
      refused,
    );
  }

  // ------------------------------------------------------------ cancel mid-run
  step("batch.submit: 10 slow pages, output json (no maxConcurrency: Spidra has none)");
  const urls = Array.from({ length: 10 }, (_, i) => `${target.url}/page/${i}`);
  const created = await sdk("POST", "/batch/scrape", { urls, output: "json", ...extras });
  must(
    '202 { status: "queued", batchId, total: 10 } with Location',
    created.status === 202 &&
      created.body?.status === "queued" &&
      created.body?.total === 10 &&
      typeof created.body?.batchId === "string" &&
      created.headers.get("location") === `/api/batch/scrape/${created.body.batchId}`,
    created,
  );
  const batchId = created.body.batchId;
  const get = async (id, opts) => {
    const r = await api("GET", `/api/batch/scrape/${id}`, { headers: key, ...opts });
    if (r.status !== 200) throw new Error(`GET batch ${id}: ${r.status} ${show(r.body)}`);
    return r.body;
  };

  step(`batch.get until ${DEFAULT_CONCURRENCY} run (the default concurrency), 5 wait`);
  let everyPollComplete = true;
  const running = await pollUntil(
    async (opts) => {
      const b = await get(batchId, opts);
      if (!Array.isArray(b.items) || b.items.length !== b.totalUrls) everyPollComplete = false;
      return b;
    },
    (b) => b.runningCount === DEFAULT_CONCURRENCY && b.pendingCount === 10 - DEFAULT_CONCURRENCY,
    { timeoutMs: BOUNDS.running },
  );
  must(`${DEFAULT_CONCURRENCY} running, 5 pending`, running.ok, pick(running.value, COUNTS));
  const runningIds = running.value.items.filter((i) => i.status === "running").map((i) => i.uuid);
  check(
    "running items have a jobId and startedAt; pending ones neither",
    running.value.items.every((i) =>
      i.status === "running"
        ? typeof i.jobId === "string" && i.startedAt !== null
        : i.jobId === null && i.startedAt === null,
    ),
    running.value.items.map((i) => pick(i, ["status", "jobId", "startedAt"])),
  );

  step("batch.cancel mid-run");
  const cancel = await sdk("DELETE", `/batch/scrape/${batchId}`);
  const expectedCancel = { status: "cancelled", cancelledItems: 5, creditsRefunded: 5 * PER_ITEM };
  check(
    `200 exactly ${show(expectedCancel)}`,
    cancel.status === 200 && isDeepStrictEqual(cancel.body, expectedCancel),
    cancel,
  );

  step("batch.cancel again");
  const again = await sdk("DELETE", `/batch/scrape/${batchId}`);
  check(
    '409 { status: "error", code: "ALREADY_TERMINAL", message: "Cannot cancel a batch that is already cancelled." }',
    again.status === 409 &&
      again.body?.status === "error" &&
      again.body?.code === "ALREADY_TERMINAL" &&
      again.body?.message === "Cannot cancel a batch that is already cancelled.",
    again,
  );

  step("watch the running five finish (batch.get, every item every time)");
  const drained = await pollUntil(
    async (opts) => {
      const b = await get(batchId, opts);
      if (!Array.isArray(b.items) || b.items.length !== b.totalUrls) everyPollComplete = false;
      return b;
    },
    (b) => b.runningCount === 0,
    { timeoutMs: BOUNDS.drained },
  );
  must("running back to 0", drained.ok, pick(drained.value, COUNTS));
  const done = drained.value;
  check(
    'status "cancelled", completedCount 5, failedCount 0, cancelledCount 5, creditsUsed 10, finishedAt set',
    done.status === "cancelled" &&
      done.completedCount === 5 &&
      done.failedCount === 0 &&
      done.cancelledCount === 5 &&
      done.creditsUsed === 5 * PER_ITEM &&
      typeof done.finishedAt === "string",
    pick(done, [...COUNTS, "creditsUsed", "finishedAt"]),
  );
  check(
    "the items running at the cancel completed, each charged 2, with its result inline",
    runningIds.every((id) => {
      const i = done.items.find((x) => x.uuid === id);
      return i?.status === "completed" && i.creditsUsed === PER_ITEM && i.result?.title?.startsWith("Page ");
    }),
    done.items.map((i) => pick(i, ["status", "creditsUsed"])),
  );
  check(
    "cancelled items: creditsUsed 0, error null, jobId null",
    done.items.filter((i) => i.status === "cancelled").length === 5 &&
      done.items
        .filter((i) => i.status === "cancelled")
        .every((i) => i.creditsUsed === 0 && i.error === null && i.jobId === null),
    done.items.filter((i) => i.status === "cancelled"),
  );
  check("every item has Spidra's documented fields", done.items.every(documentedItem), done.items[0]);
  check("every poll answered every item (no silent truncation)", everyPollComplete, everyPollComplete);
  check(
    "the target saw only the five running pages",
    [...target.hits].filter(([p]) => p.startsWith("/page/")).reduce((n, [, c]) => n + c, 0) === 5,
    Object.fromEntries(target.hits),
  );

  // ------------------------------------------------------------ retry failed items
  step("batch.run-like: submit a page and 2 flaky URLs, poll until terminal (status completed, 2 failed)");
  const flaky = await sdk("POST", "/batch/scrape", {
    urls: [`${target.url}/page/50`, `${target.url}/flaky/1`, `${target.url}/flaky/2`],
    output: "json",
    ...extras,
  });
  must("202 queued", flaky.status === 202, flaky);
  const flakyId = flaky.body.batchId;
  const terminal = (b) => ["completed", "failed", "cancelled"].includes(b.status);
  const firstRun = await pollUntil((opts) => get(flakyId, opts), terminal, { timeoutMs: BOUNDS.terminal });
  must("terminal", firstRun.ok, pick(firstRun.value, COUNTS));
  check(
    'status "completed" with failedCount 2 (Spidra: completed does not mean every URL succeeded)',
    firstRun.value.status === "completed" && firstRun.value.completedCount === 1 && firstRun.value.failedCount === 2,
    pick(firstRun.value, COUNTS),
  );
  check(
    'failed items carry error "…" as a string, errorCode HTTP_404, creditsUsed 0',
    firstRun.value.items
      .slice(1)
      .every(
        (i) =>
          i.status === "failed" && typeof i.error === "string" && i.errorCode === "HTTP_404" && i.creditsUsed === 0,
      ),
    firstRun.value.items.map((i) => pick(i, ["status", "error", "errorCode", "creditsUsed"])),
  );

  step("batch.retry");
  const retried = await sdk("POST", `/batch/scrape/${flakyId}/retry`, {});
  check(
    '202 { status: "queued", retriedCount: 2 }',
    retried.status === 202 && isDeepStrictEqual(retried.body, { status: "queued", retriedCount: 2 }),
    retried,
  );
  const secondRun = await pollUntil(
    (opts) => get(flakyId, opts),
    (b) => terminal(b) && b.pendingCount === 0,
    {
      timeoutMs: BOUNDS.terminal,
    },
  );
  check(
    "after the retry: completed, 3 completed, 0 failed, creditsUsed 6",
    secondRun.ok &&
      secondRun.value.status === "completed" &&
      secondRun.value.completedCount === 3 &&
      secondRun.value.failedCount === 0 &&
      secondRun.value.creditsUsed === 3 * PER_ITEM,
    pick(secondRun.value, [...COUNTS, "creditsUsed"]),
  );
  const again2 = await sdk("POST", `/batch/scrape/${flakyId}/retry`, {});
  check(
    "batch.retry with nothing failed: 400 NO_FAILED_ITEMS",
    again2.status === 400 && again2.body?.code === "NO_FAILED_ITEMS",
    again2,
  );

  // ------------------------------------------------------------ more than 50 and 100 items
  step("batch.get of a 120-URL batch returns all 120 items (the SDK never pages)");
  const bigUrls = Array.from({ length: 120 }, (_, i) => `${target.url}/page/${1000 + i}`);
  const big = await sdk("POST", "/batch/scrape", { urls: bigUrls, output: "markdown", ...extras });
  must("202 queued, total 120", big.status === 202 && big.body?.total === 120, big);
  const bigCancel = await sdk("DELETE", `/batch/scrape/${big.body.batchId}`);
  check("cancelled at once (most items never started)", bigCancel.status === 200, bigCancel);
  const bigRead = await get(big.body.batchId);
  check(
    "120 items, in order, nextCursor null",
    bigRead.items.length === 120 && bigRead.items.every((i, n) => i.url === bigUrls[n]) && bigRead.nextCursor === null,
    { items: bigRead.items?.length, nextCursor: bigRead.nextCursor },
  );
  const bigDrained = await pollUntil(
    (opts) => get(big.body.batchId, opts),
    (b) => b.runningCount === 0,
    {
      timeoutMs: BOUNDS.drained,
    },
  );
  must("the big batch's running items finished", bigDrained.ok, pick(bigDrained.value, COUNTS));

  // ------------------------------------------------------------ list
  step("batch.list");
  const list = await sdk("GET", "/batch/scrape?page=1&limit=20");
  const jobs = list.body?.jobs ?? [];
  check(
    "newest first: the big batch, the flaky one, the cancelled one",
    list.status === 200 &&
      isDeepStrictEqual(
        jobs.map((j) => j.uuid),
        [big.body.batchId, flakyId, batchId],
      ),
    jobs.map((j) => pick(j, ["uuid", "status"])),
  );
  check(
    "entries carry outputFormat (markdown, json, json) and scrapingChannel api",
    isDeepStrictEqual(
      jobs.map((j) => [j.outputFormat, j.scrapingChannel]),
      [
        ["markdown", "api"],
        ["json", "api"],
        ["json", "api"],
      ],
    ),
    jobs,
  );
  check(
    "pagination { page 1, limit 20, total 3, totalPages 1 }",
    isDeepStrictEqual(list.body?.pagination, { page: 1, limit: 20, total: 3, totalPages: 1 }),
    list.body?.pagination,
  );

  // ------------------------------------------------------------ usage
  step("usage.get('7d'): today's row from the ledger");
  const finals = await Promise.all([batchId, flakyId, big.body.batchId].map((id) => get(id)));
  const expected = {
    creditsReserved: finals.reduce((n, b) => n + b.creditsReserved, 0),
    creditsCharged: finals.reduce((n, b) => n + b.creditsUsed, 0),
    creditsRefunded: finals.reduce((n, b) => n + b.creditsRefunded, 0),
    items: {
      completed: finals.reduce((n, b) => n + b.completedCount, 0),
      // each failure counts on the day it happened, also when a retry mended it later
      failed: 2,
      cancelled: finals.reduce((n, b) => n + b.cancelledCount, 0),
    },
  };
  const usage = await pollUntil(
    async (opts) => (await api("GET", "/api/usage-stats?range=7d", { headers: key, ...opts })).body,
    (u) => isDeepStrictEqual(pick(u?.data?.at(-1), Object.keys(expected)), expected),
    { timeoutMs: BOUNDS.settle },
  );
  const today = usage.value?.data?.at(-1);
  check(`today: ${show(expected)}`, usage.ok, today);
  check(
    "{ status, data: 7 rows } of label, date, tokens, requests, crawls, captchas, latency, credits",
    usage.value?.data?.length === 7 &&
      usage.value.data.every(
        (r) =>
          ["label", "date"].every((k) => typeof r[k] === "string") &&
          ["tokens", "requests", "crawls", "captchas", "latency", "credits"].every((k) => typeof r[k] === "number"),
      ),
    usage.value,
  );
  check(
    "credits = charged; requests = pages fetched (completed + failed); a mean latency above 0",
    today?.credits === expected.creditsCharged &&
      today?.requests === expected.items.completed + expected.items.failed &&
      today?.latency > 0,
    today,
  );
  const ledger = await api("GET", "/api/credits/ledger?limit=100", { headers: key });
  const sum = (kind) => (ledger.body?.entries ?? []).filter((e) => e.kind === kind).reduce((n, e) => n + e.amount, 0);
  check(
    "the usage row equals the ledger's sums (reserve, consume, refund)",
    today?.creditsReserved === sum("reserve") &&
      today?.creditsCharged === sum("consume") &&
      today?.creditsRefunded === sum("refund"),
    {
      usage: pick(today, ["creditsReserved", "creditsCharged", "creditsRefunded"]),
      ledger: [sum("reserve"), sum("consume"), sum("refund")],
    },
  );
  const badRange = await sdk("GET", "/usage-stats?range=1y");
  check(
    "usage.get('1y'): 400 naming range",
    badRange.status === 400 && /range/.test(badRange.body?.message ?? ""),
    badRange,
  );

  // ------------------------------------------------------------ the documented errors
  step("errors as the SDK maps them");
  const noKey = await api("GET", "/api/batch/scrape", {});
  check("no key: 401 (SpidraAuthenticationError)", noKey.status === 401 && noKey.body?.status === "error", noKey);
  const wrongKey = await api("GET", "/api/batch/scrape", {
    headers: authHeaders(`${acct.body.apiKey.slice(0, -4)}0000`),
  });
  check("a wrong key: 403", wrongKey.status === 403 && wrongKey.body?.code === "INVALID_API_KEY", wrongKey);
  const unknown = await sdk("GET", `/batch/scrape/${crypto.randomUUID()}`);
  check("an unknown batch: 404", unknown.status === 404 && unknown.body?.status === "error", unknown);
  const poor = await api("POST", "/admin/accounts", {
    headers: { authorization: `Bearer ${adminToken}` },
    body: { name: "poor", credits: 1 },
  });
  const broke = await api("POST", "/api/batch/scrape", {
    headers: authHeaders(poor.body?.apiKey ?? ""),
    body: { urls: [`${target.url}/page/0`], output: "json" },
  });
  check(
    "out of credits: 403 INSUFFICIENT_CREDITS (the SDK's SpidraInsufficientCreditsError)",
    broke.status === 403 && broke.body?.code === "INSUFFICIENT_CREDITS",
    broke,
  );
}

await run.run(story);
