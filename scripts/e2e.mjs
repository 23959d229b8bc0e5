// End-to-end story against a real `wrangler dev` (run with `npm run e2e`).
//
// Starts a slow local target server and `wrangler dev` (own state dir, random admin token),
// then plays the seed's story through HTTP only: a 10-URL batch with maxConcurrency 2, a
// cancel while 2 items run, the running ones finishing and charged, the other 8 refunded;
// then the batch's results downloaded (NDJSON and CSV), every line checked against the batch
// read, and its receipt.
// Every process it starts is stopped at the end, also on failure, timeout or Ctrl-C; it
// exits non-zero unless every check passed. Network: 127.0.0.1 only. Node built-ins only.
import { isDeepStrictEqual } from "node:util";
import { sleep } from "./lib/wrangler.mjs";
import { startTargetServer } from "./target-server.mjs";
import { show } from "./lib/checks.mjs";
import { createStoryRun } from "./lib/story-run.mjs";

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
  total: 240_000, // the whole run, whatever happens
};
const POLL_MS = 100;

const run = createStoryRun({ name: "e2e", totalMs: BOUNDS.total, requestMs: BOUNDS.request, pollMs: POLL_MS });
const { check, must, step, api, pollUntil } = run;

const pick = (obj, keys) => Object.fromEntries(keys.map((k) => [k, obj?.[k]]));
const COUNTS = [
  "status",
  "pendingCount",
  "runningCount",
  "completedCount",
  "failedCount",
  "cancelledCount",
  "creditsUsed",
  "creditsRefunded",
];

// ---------------------------------------------------------------- the story

async function story() {
  step("start: target server, wrangler dev");
  const target = await startTargetServer({ delayMs: DELAY_MS });
  run.onCleanup(() => target.close());
  console.log(`  target server on ${target.url} (pages answer after ${DELAY_MS} ms)`);
  const { adminToken } = await run.startWorker({
    readyMs: BOUNDS.ready,
    vars: { ALLOW_LOOPBACK_TARGETS: "true", FETCH_TIMEOUT_MS: String(FETCH_TIMEOUT_MS) },
  });

  step("POST /admin/accounts");
  const acct = await api("POST", "/admin/accounts", {
    headers: { authorization: `Bearer ${adminToken}` },
    body: { name: "e2e", credits: 100 },
  });
  must(
    "account created: 201 with accountId, apiKey, keyId, credits",
    acct.status === 201 &&
      typeof acct.body?.accountId === "string" &&
      typeof acct.body?.apiKey === "string" &&
      typeof acct.body?.keyId === "string" &&
      acct.body?.credits?.balance === 100,
    acct,
  );
  const key = { "x-api-key": acct.body.apiKey };
  console.log(`  account ${acct.body.accountId}, key ${acct.body.keyId}`);

  step(`POST /api/batch/scrape: ${URL_COUNT} URLs with your ids and metadata, maxConcurrency 2, output json`);
  const urls = Array.from({ length: URL_COUNT }, (_, i) => ({
    url: `${target.url}/page/${i}`,
    customId: `row-${i}`,
    metadata: { row: i },
  }));
  const created = await api("POST", "/api/batch/scrape", {
    headers: key,
    body: { urls, maxConcurrency: 2, output: "json" },
  });
  must(
    `batch created: 202 { status: "queued", batchId, total: ${URL_COUNT} }`,
    created.status === 202 &&
      created.body?.status === "queued" &&
      typeof created.body?.batchId === "string" &&
      created.body?.total === URL_COUNT,
    created,
  );
  const batchId = created.body.batchId;
  const batchPath = `/api/batch/scrape/${batchId}`;
  console.log(`  batch ${batchId}`);

  const afterCreate = await api("GET", "/api/credits", { headers: key });
  check(
    "credits after create: balance 80, reserved 20",
    afterCreate.status === 200 && afterCreate.body?.balance === 80 && afterCreate.body?.reserved === 20,
    afterCreate,
  );

  const getBatch = async (opts) => {
    const r = await api("GET", batchPath, { headers: key, ...opts });
    if (r.status !== 200) throw new Error(`GET ${batchPath}: ${r.status} ${show(r.body)}`);
    return r.body;
  };

  step(`poll GET ${batchPath} every ${POLL_MS} ms until runningCount === 2`);
  const running = await pollUntil(getBatch, (b) => b.runningCount === 2, { timeoutMs: BOUNDS.running });
  must(
    `runningCount reaches 2 within ${BOUNDS.running / 1000} s`,
    running.ok,
    running.value ? pick(running.value, COUNTS) : running.error?.message,
  );
  console.log(`  ${show(pick(running.value, COUNTS))}`);
  check("pendingCount === 8 while 2 run", running.value.pendingCount === 8, pick(running.value, COUNTS));

  step(`DELETE ${batchPath}`);
  const cancelled = await api("DELETE", batchPath, { headers: key });
  const expectedCancel = { status: "cancelled", cancelledItems: 8, creditsRefunded: 16 };
  check(
    `cancel: 200 exactly ${show(expectedCancel)}`,
    cancelled.status === 200 && isDeepStrictEqual(cancelled.body, expectedCancel),
    cancelled,
  );

  step("poll until runningCount === 0 (the 2 running items finish)");
  const drained = await pollUntil(getBatch, (b) => b.runningCount === 0, { timeoutMs: BOUNDS.drained });
  must(
    `runningCount back to 0 within ${BOUNDS.drained / 1000} s`,
    drained.ok,
    drained.value ? pick(drained.value, COUNTS) : drained.error?.message,
  );
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
    completed.length === 2 &&
      completed.every((i) => (i.result !== null && i.result !== undefined) || typeof i.resultUrl === "string"),
    completed.map((i) => pick(i, ["uuid", "url", "status", "result", "resultUrl", "error"])),
  );

  step("GET .../items/<itemId>/result");
  const resultStatuses = [];
  for (const item of completed) {
    const r = await api("GET", `${batchPath}/items/${item.uuid}/result`, { headers: key });
    resultStatuses.push({ url: item.url, status: r.status, body: show(r.body).slice(0, 200) });
    console.log(`  ${item.url} -> ${r.status} ${show(r.body).slice(0, 160)}`);
  }
  check(
    "result answers 200 for both completed items",
    completed.length === 2 && resultStatuses.every((r) => r.status === 200),
    resultStatuses,
  );
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
  check("the pages fetched are the completed items' URLs", isDeepStrictEqual(hitPaths, completedPaths), {
    hitPaths,
    completedPaths,
  });

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
    credits !== undefined &&
      Number.isInteger(credits.granted) &&
      credits.granted === credits.balance + credits.reserved + credits.used,
    credits,
  );

  step("GET /api/credits/ledger?limit=100");
  const ledger = await api("GET", "/api/credits/ledger?limit=100", { headers: key });
  const entries = Array.isArray(ledger.body?.entries) ? ledger.body.entries.filter((e) => e.batchId === batchId) : [];
  for (const e of entries)
    console.log(`  ${e.kind} ${e.amount}${e.itemId ? ` item ${e.itemId}` : ""}${e.note ? ` (${e.note})` : ""}`);
  const ofKind = (kind) => entries.filter((e) => e.kind === kind);
  const brief = entries.map((e) => pick(e, ["kind", "amount", "itemId", "note"]));
  check(
    "ledger: one reserve of 20 for the batch",
    ledger.status === 200 && ofKind("reserve").length === 1 && ofKind("reserve")[0].amount === 20,
    ledger.status === 200 ? brief : ledger,
  );
  check(
    "ledger: one refund of 16 for the batch",
    ofKind("refund").length === 1 && ofKind("refund")[0].amount === 16,
    brief,
  );
  check("ledger: consume entries sum to 4", ofKind("consume").reduce((n, e) => n + e.amount, 0) === 4, brief);

  await downloadResults(key, batchPath, after, completed);
}

/** The results of the cancelled batch, every line against the batch read; the CSV form; the receipt. */
async function downloadResults(key, batchPath, after, completed) {
  step(`GET ${batchPath}/results (NDJSON)`);
  const res = await api("GET", `${batchPath}/results`, { headers: key });
  must(
    "results: 200 application/x-ndjson, x-batch-complete: true",
    res.status === 200 &&
      (res.headers.get("content-type") ?? "").startsWith("application/x-ndjson") &&
      res.headers.get("x-batch-complete") === "true",
    { status: res.status, type: res.headers.get("content-type"), complete: res.headers.get("x-batch-complete") },
  );
  const lines = res.text.endsWith("\n")
    ? res.text
        .slice(0, -1)
        .split("\n")
        .map((l) => JSON.parse(l))
    : [];
  const items = Array.isArray(after.items) ? after.items : [];
  check(
    `results: ${URL_COUNT} lines, index 0..${URL_COUNT - 1} in order`,
    lines.length === URL_COUNT && lines.every((l, i) => l.index === i),
    lines.map((l) => l.index),
  );
  const mismatches = [];
  for (const [i, line] of lines.entries()) {
    const item = items[i];
    const want = item && {
      index: item.index,
      itemId: item.uuid,
      customId: item.customId,
      url: item.url,
      status: item.status,
      error: item.error,
      errorCode: item.errorCode,
      creditsUsed: item.creditsUsed,
      metadata: item.metadata,
    };
    const got = pick(line, [
      "index",
      "itemId",
      "customId",
      "url",
      "status",
      "error",
      "errorCode",
      "creditsUsed",
      "metadata",
    ]);
    if (!isDeepStrictEqual(got, want)) mismatches.push({ got, want });
    if (line.customId !== `row-${i}` || line.metadata?.row !== i)
      mismatches.push({ line: i, ids: pick(line, ["customId", "metadata"]) });
  }
  check(
    "results: every line equals its item in the batch read (ids, url, status, error, errorCode, credits, metadata)",
    mismatches.length === 0,
    mismatches,
  );
  const statuses = lines.map((l) => l.status);
  check(
    "results: 2 completed, 8 cancelled",
    statuses.filter((s) => s === "completed").length === 2 && statuses.filter((s) => s === "cancelled").length === 8,
    statuses,
  );
  const resultMismatches = [];
  for (const item of completed) {
    const stored = await api("GET", `${batchPath}/items/${item.uuid}/result`, { headers: key });
    const line = lines.find((l) => l.itemId === item.uuid);
    if (!line || line.result === null || !isDeepStrictEqual(line.result, stored.body))
      resultMismatches.push({
        itemId: item.uuid,
        line: show(line?.result).slice(0, 120),
        stored: show(stored.body).slice(0, 120),
      });
  }
  check(
    "results: each completed line carries the item's stored result",
    completed.length === 2 && resultMismatches.length === 0,
    resultMismatches,
  );
  check(
    "results: cancelled lines have no result",
    lines.filter((l) => l.status === "cancelled").every((l) => l.result === null),
    statuses,
  );

  step(`GET ${batchPath}/results?format=csv&status=cancelled`);
  const csv = await api("GET", `${batchPath}/results?format=csv&status=cancelled`, { headers: key });
  const rows = csv.text.split("\r\n").filter(Boolean);
  check(
    "csv: 200 text/csv, a header and 8 cancelled rows",
    csv.status === 200 &&
      (csv.headers.get("content-type") ?? "").startsWith("text/csv") &&
      rows.length === 9 &&
      rows[0].startsWith("index,itemId,customId,url,status"),
    { status: csv.status, rows: rows.slice(0, 3) },
  );

  step(`GET ${batchPath}/receipt`);
  const receipt = await api("GET", `${batchPath}/receipt`, { headers: key });
  const r = receipt.body ?? {};
  console.log(`  ${show(pick(r, ["reserved", "charged", "refunded", "held", "balanced", "settled"]))}`);
  check(
    "receipt: reserved 20 = charged 4 + refunded 16 + held 0, settled",
    receipt.status === 200 &&
      r.reserved === 20 &&
      r.charged === 4 &&
      r.refunded === 16 &&
      r.held === 0 &&
      r.balanced === true &&
      r.settled === true,
    pick(r, ["reserved", "charged", "refunded", "held", "balanced", "settled"]),
  );
  const kinds = Array.isArray(r.entries) ? r.entries.map((e) => e.kind) : [];
  check(
    "receipt: its ledger rows (1 reserve, 2 consume, 1 refund), each with an idempotency key",
    kinds.filter((k) => k === "reserve").length === 1 &&
      kinds.filter((k) => k === "consume").length === 2 &&
      kinds.filter((k) => k === "refund").length === 1 &&
      r.entries.every((e) => typeof e.idempotencyKey === "string"),
    r.entries,
  );
}

await run.run(story);
