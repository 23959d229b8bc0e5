// The Firecrawl-compatible surface driven by Firecrawl's own, unmodified JS SDK
// (@mendable/firecrawl-js, a dev dependency) against a real `wrangler dev` and local targets
// (run with `npm run test:firecrawl`). The SDK's apiUrl is the wrangler dev URL; our own /api
// routes are read beside it to check credits, counts and the ledger.
//
// startBatchScrape, getBatchScrapeStatus while running, cancelBatchScrape mid-run (exact
// refunds, no fetch after the cancel), batchScrape waiting for more documents than fit in one
// page (FIRECRAWL_PAGE_SIZE=5), getBatchScrapeErrors after a 404 page, an idempotent retry of a
// create, and a refused option as the SDK's error. Prints "firecrawl: N checks passed, M failed"
// last; stops every process it started. Network: 127.0.0.1 only.
import { isDeepStrictEqual } from "node:util";
import { show } from "./lib/checks.mjs";
import { createStoryRun } from "./lib/story-run.mjs";
import { sleep } from "./lib/wrangler.mjs";
import { startTargetServer } from "./target-server.mjs";

// The SDK's HTTP client (axios) honours proxy variables: local addresses must not go through one.
process.env.NO_PROXY = ["127.0.0.1", "localhost", process.env.NO_PROXY].filter(Boolean).join(",");
process.env.no_proxy = process.env.NO_PROXY;
const { default: Firecrawl, SdkError } = await import("@mendable/firecrawl-js");

/** Slow pages: long enough to cancel while 2 run. */
const SLOW_MS = 3000;
const PAGE_SIZE = 5;
const CREDITS = 100;
const BOUNDS = {
  ready: 60_000,
  running: 30_000,
  drained: 30_000,
  wait: 60,
  credits: 10_000,
  request: 10_000,
  total: 300_000,
};

const run = createStoryRun({ name: "firecrawl", totalMs: BOUNDS.total, requestMs: BOUNDS.request });
const { check, must, step, api, pollUntil } = run;
const pagePaths = (hits) => [...hits].filter(([p]) => p.startsWith("/page/")).reduce((n, [, c]) => n + c, 0);

async function story() {
  step("start: a slow and a fast target server, wrangler dev (FIRECRAWL_PAGE_SIZE=5)");
  const slow = await startTargetServer({ delayMs: SLOW_MS });
  const fast = await startTargetServer({ delayMs: 0 });
  run.onCleanup(() => slow.close());
  run.onCleanup(() => fast.close());
  const { base, adminToken } = await run.startWorker({
    readyMs: BOUNDS.ready,
    vars: { ALLOW_LOOPBACK_TARGETS: "true", FIRECRAWL_PAGE_SIZE: String(PAGE_SIZE) },
  });

  const acct = await api("POST", "/admin/accounts", {
    headers: { authorization: `Bearer ${adminToken}` },
    body: { name: "firecrawl", credits: CREDITS },
  });
  must("account created with 100 credits", acct.status === 201 && typeof acct.body?.apiKey === "string", acct);
  const key = { "x-api-key": acct.body.apiKey };
  const app = new Firecrawl({ apiKey: acct.body.apiKey, apiUrl: base, maxRetries: 1 });
  const apiBatch = async (id) => (await api("GET", `/api/batch/scrape/${id}?limit=100`, { headers: key })).body;

  // ---- start, status while running, cancel mid-run
  step("startBatchScrape: 6 slow pages, maxConcurrency 2");
  const slowUrls = Array.from({ length: 6 }, (_, i) => `${slow.url}/page/${i}`);
  const started = await app.startBatchScrape(slowUrls, { options: { formats: ["markdown"] }, maxConcurrency: 2 });
  must(
    "startBatchScrape answers { id, url } (url is ours)",
    typeof started.id === "string" && started.url === `${base}/v2/batch/scrape/${started.id}`,
    started,
  );
  const running = await pollUntil(
    () => apiBatch(started.id),
    (b) => b?.runningCount === 2,
    {
      timeoutMs: BOUNDS.running,
    },
  );
  must("2 pages running (GET /api/batch/scrape/:id)", running.ok, running.value);

  step("getBatchScrapeStatus while running");
  const during = await app.getBatchScrapeStatus(started.id);
  check(
    'status "scraping", total 6, completed 0, no documents yet',
    during.status === "scraping" && during.total === 6 && during.completed === 0 && during.data.length === 0,
    during,
  );

  step("cancelBatchScrape mid-run");
  const hitsAtCancel = pagePaths(slow.hits);
  const cancelled = await app.cancelBatchScrape(started.id);
  check("cancelBatchScrape answers true", cancelled === true, cancelled);
  check(
    "the target had seen exactly the 2 running pages at the cancel",
    hitsAtCancel === 2,
    Object.fromEntries(slow.hits),
  );
  const drained = await pollUntil(
    () => apiBatch(started.id),
    (b) => b?.runningCount === 0,
    {
      timeoutMs: BOUNDS.drained,
    },
  );
  must("the 2 running pages finish", drained.ok, drained.value);
  check(
    "counts on /api: 2 completed, 4 cancelled, creditsUsed 2, creditsRefunded 4",
    drained.value.completedCount === 2 &&
      drained.value.cancelledCount === 4 &&
      drained.value.creditsUsed === 2 &&
      drained.value.creditsRefunded === 4,
    drained.value,
  );
  const afterCancel = await app.getBatchScrapeStatus(started.id);
  check(
    'getBatchScrapeStatus: "cancelled", completed 2, creditsUsed 2, their 2 documents',
    afterCancel.status === "cancelled" &&
      afterCancel.completed === 2 &&
      afterCancel.creditsUsed === 2 &&
      afterCancel.data.length === 2 &&
      afterCancel.data.every((d) => typeof d.markdown === "string" && d.markdown.startsWith("# Page")),
    afterCancel,
  );
  const again = await app.cancelBatchScrape(started.id).then(
    () => "no error",
    (err) => err,
  );
  check(
    "cancelling it again: the SDK throws SdkError with status 409",
    again instanceof SdkError && again.status === 409,
    again?.message ?? again,
  );
  await sleep(2 * SLOW_MS);
  check("no fetch reached the target after the cancel", pagePaths(slow.hits) === 2, Object.fromEntries(slow.hits));

  // ---- batchScrape waiting, more documents than fit in one page
  step(`batchScrape: 12 pages (pages of ${PAGE_SIZE} documents), formats markdown and links`);
  const fastUrls = Array.from({ length: 12 }, (_, i) => `${fast.url}/page/${i}`);
  const job = await app.batchScrape(fastUrls, {
    options: { formats: ["markdown", "links"] },
    pollInterval: 1,
    timeout: BOUNDS.wait,
  });
  const sources = job.data.map((d) => d.metadata?.sourceURL);
  check(
    'batchScrape ends "completed", total 12, completed 12',
    job.status === "completed" && job.total === 12 && job.completed === 12,
    {
      status: job.status,
      total: job.total,
      completed: job.completed,
    },
  );
  check("every document exactly once, in order (auto-pagination)", isDeepStrictEqual(sources, fastUrls), sources);
  check(
    "documents carry markdown, links and metadata (title, description, language, statusCode)",
    job.data.every(
      (d, i) =>
        d.markdown?.includes(`# Page ${i}`) &&
        Array.isArray(d.links) &&
        d.links.includes(`${fast.url}/page/${i + 1}`) &&
        d.metadata?.title === `Page ${i}` &&
        d.metadata?.description === `desc ${i}` &&
        d.metadata?.language === "en" &&
        d.metadata?.statusCode === 200,
    ),
    job.data[0],
  );
  check("creditsUsed 12 (one per page)", job.creditsUsed === 12, job.creditsUsed);
  const raw = await api("GET", `/v2/batch/scrape/${job.id}`, {
    headers: { authorization: `Bearer ${acct.body.apiKey}` },
  });
  check(
    `the first page holds ${PAGE_SIZE} documents and a next URL, with success: true`,
    raw.status === 200 &&
      raw.body?.success === true &&
      raw.body?.data?.length === PAGE_SIZE &&
      String(raw.body?.next).startsWith(`${base}/v2/batch/scrape/${job.id}?cursor=`),
    { status: raw.status, next: raw.body?.next, documents: raw.body?.data?.length },
  );

  // ---- errors after a 404
  step("getBatchScrapeErrors after a page that answers 404");
  const mixed = await app.batchScrape([`${fast.url}/page/100`, `${fast.url}/missing`], {
    pollInterval: 1,
    timeout: BOUNDS.wait,
  });
  check("the batch ends with 1 document", mixed.completed === 1 && mixed.data.length === 1, mixed);
  const errs = await app.getBatchScrapeErrors(mixed.id);
  check(
    "errors: the 404 page ({ id, timestamp, url, error }), robotsBlocked []",
    errs.errors.length === 1 &&
      errs.errors[0].url === `${fast.url}/missing` &&
      typeof errs.errors[0].id === "string" &&
      typeof errs.errors[0].timestamp === "string" &&
      /404/.test(errs.errors[0].error) &&
      isDeepStrictEqual(errs.robotsBlocked, []),
    errs,
  );

  // ---- idempotent retry
  step("startBatchScrape twice with the same idempotencyKey");
  const idemUrls = [`${fast.url}/page/200`, `${fast.url}/page/201`];
  const first = await app.startBatchScrape(idemUrls, { idempotencyKey: "story-retry-1" });
  const second = await app.startBatchScrape(idemUrls, { idempotencyKey: "story-retry-1" });
  check("the retry answers the same id", first.id === second.id, { first, second });
  const idemDone = await app.batchScrape(idemUrls, {
    idempotencyKey: "story-retry-1",
    pollInterval: 1,
    timeout: BOUNDS.wait,
  });
  check(
    "batchScrape with that key waits for the same batch",
    idemDone.completed === 2 && idemDone.creditsUsed === 2,
    idemDone,
  );
  const list = await api("GET", "/api/batch/scrape?limit=50", { headers: key });
  check(
    "the account has 4 batches, not 6 (no duplicate created)",
    list.body?.pagination?.total === 4,
    list.body?.pagination,
  );

  // ---- a refused option, as the SDK reports it
  step("a json format (AI) is refused with 400 where AI is off (as in local development), as the SDK's SdkError");
  const refused = await app
    .startBatchScrape([`${fast.url}/page/1`], { options: { formats: [{ type: "json", prompt: "the title" }] } })
    .then(
      () => "no error",
      (err) => err,
    );
  check(
    "SdkError status 400 naming formats[0] and how to turn AI on",
    refused instanceof SdkError &&
      refused.status === 400 &&
      /formats\[0\]/.test(refused.message) &&
      /AI_ENABLED/.test(refused.message),
    refused?.message ?? refused,
  );

  // ---- money
  step("GET /api/credits: exact refunds, one ledger");
  const expected = { balance: 83, reserved: 0, used: 17, refunded: 5, granted: CREDITS };
  const settled = await pollUntil(
    async () => (await api("GET", "/api/credits", { headers: key })).body,
    (c) => Object.keys(expected).every((k) => c?.[k] === expected[k]),
    { timeoutMs: BOUNDS.credits },
  );
  check(`credits ${show(expected)} (used 2+12+1+2, refunded 4 cancelled + 1 page 404)`, settled.ok, settled.value);
  const ledger = await api("GET", "/api/credits/ledger?limit=100", { headers: key });
  const ofCancel = (ledger.body?.entries ?? []).filter((e) => e.batchId === started.id && e.kind === "refund");
  check("ledger: one refund of 4 for the cancelled batch", ofCancel.length === 1 && ofCancel[0].amount === 4, ofCancel);
}

await run.run(story);
