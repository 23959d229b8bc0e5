// The live dashboard in a real browser (run with `npm run test:browser`).
//
// Starts a slow local target server, `wrangler dev` (a snapshot of the Worker, its own state
// dir, a random admin token, loopback targets allowed) behind a small TCP relay of our own,
// and Debian's Chromium driven by playwright-core. Makes an account through the admin API,
// then does everything else through the page: paste the key, create a 10-URL batch with
// maxConcurrency 2, watch the bar move without reloading, cut the connection (the relay
// drops every socket) and see the page reconnect, press Cancel and accept the confirmation,
// see the refund and the final counts and credits, download the results (JSONL and CSV)
// and check them against the API. Saves test-output/dashboard.png.
//
// Prints `browser: N checks passed, M failed` and exits non-zero unless every check passed.
// Bounded: the whole run stops after BOUNDS.total. Network: 127.0.0.1 only. Every process
// it starts (wrangler's process group, Chromium) is stopped at the end, also on failure.
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile } from "node:fs/promises";
import { createConnection, createServer } from "node:net";
import { join } from "node:path";
import { ROOT, sleep } from "./lib/wrangler.mjs";
import { startTargetServer } from "./target-server.mjs";
import { show } from "./lib/checks.mjs";
import { launchChromiumContext, requireChromium } from "./lib/chromium.mjs";
import { createStoryRun } from "./lib/story-run.mjs";

/** How long each target page takes: long enough to see items run, short enough for a quick run. */
const DELAY_MS = 3000;
const URL_COUNT = 10;
const CREDITS = 100;
const PER_ITEM = 2; // json output
const SCREENSHOT = join(ROOT, "test-output", "dashboard.png");

const BOUNDS = {
  bundle: 60_000, // wrangler deploy --dry-run of the snapshot
  ready: 60_000, // wrangler dev answers GET /healthz
  ui: 10_000, // the page reacts to a click
  running: 20_000, // the page shows running 2
  step: 15_000, // one more transition shows up
  reconnect: 10_000, // the page is live again after the drop
  drained: 30_000, // running back to 0 after the cancel
  request: 10_000, // any single HTTP request from this script
  stopGrace: 5_000, // SIGTERM -> SIGKILL for wrangler's process group
  total: 120_000, // the whole run, whatever happens
};

const run = createStoryRun({
  name: "browser",
  totalMs: BOUNDS.total,
  requestMs: BOUNDS.request,
  stopGraceMs: BOUNDS.stopGrace,
  stopping: "Chromium, wrangler, the relay and the target server",
});
const { api, check, housekeeping, must, step } = run;

// ---------------------------------------------------------------- downloads

/** Presses "Download results" (JSONL, then CSV) and checks each file against the API's batch read. */
async function downloadResults(page, apiKey, batchId, api) {
  step('press "Download results": JSONL, then CSV');
  const truth = await api("GET", `/api/batch/scrape/${batchId}?limit=100`, { headers: { "x-api-key": apiKey } });
  const items = truth.body?.items ?? [];
  for (const [button, ext] of [
    ["#download-jsonl", "jsonl"],
    ["#download-csv", "csv"],
  ]) {
    const [file] = await Promise.all([page.waitForEvent("download", { timeout: BOUNDS.ui }), page.click(button)]);
    const path = await file.path();
    const text = path ? await readFile(path, "utf8") : "";
    check(
      `the ${ext.toUpperCase()} file is named batch-<id>.${ext}`,
      file.suggestedFilename() === `batch-${batchId}.${ext}`,
      file.suggestedFilename(),
    );
    if (ext === "jsonl") {
      const lines = text
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l));
      const same = (l, i) =>
        l.index === i &&
        l.itemId === items[i]?.uuid &&
        l.url === items[i]?.url &&
        l.status === items[i]?.status &&
        l.creditsUsed === items[i]?.creditsUsed;
      check(
        `JSONL: ${URL_COUNT} lines, in order, each matching the API's item`,
        lines.length === URL_COUNT && lines.length === items.length && lines.every(same),
        lines.map((l) => [l.index, l.status]),
      );
      check(
        "JSONL: completed lines carry their result",
        lines.filter((l) => l.status === "completed").every((l) => l.result && typeof l.result === "object"),
        lines.filter((l) => l.status === "completed").map((l) => show(l.result).slice(0, 80)),
      );
    } else {
      const rows = text.split("\r\n").filter(Boolean);
      check(
        `CSV: a header and ${URL_COUNT} rows, statuses as the API's`,
        rows[0]?.startsWith("index,itemId,customId,url,status,") &&
          rows.length === URL_COUNT + 1 &&
          items.every((it, i) => rows[i + 1]?.startsWith(`${i},${it.uuid},,${it.url},${it.status},`)),
        rows.slice(0, 3),
      );
    }
  }
  const status = await page.textContent("#download-status");
  check("the page says what it downloaded", /^Downloaded batch-.*\.csv$/.test(status ?? ""), status);
}

// ---------------------------------------------------------------- the relay

/**
 * A TCP relay 127.0.0.1:<port> -> wrangler dev. The browser talks to the relay, so the test
 * can cut every connection at once (a real drop: the page sees its WebSocket close).
 */
async function startRelay(upstreamPort) {
  const sockets = new Set();
  const server = createServer((client) => {
    const upstream = createConnection({ host: "127.0.0.1", port: upstreamPort });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
    }
    client.pipe(upstream);
    upstream.pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  return {
    port: server.address().port,
    /** Destroys every open connection; returns how many there were. */
    dropAll() {
      const n = sockets.size;
      for (const s of sockets) s.destroy();
      return n;
    },
    close() {
      return new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      });
    },
  };
}

// ---------------------------------------------------------------- reading the page

const STATES = ["pending", "running", "completed", "failed", "cancelled"];

/** What the page shows for the selected batch: counts, status, live badge, credits, messages. */
function readPage(page) {
  return page.evaluate(() => {
    const text = (id) => document.getElementById(id)?.textContent?.trim() ?? null;
    const num = (id) => {
      const t = text(id);
      return t === null || t === "" || t === "–" ? null : Number(t);
    };
    return {
      batchId: text("batch-id"),
      status: text("batch-status"),
      badge: document.getElementById("live-badge")?.dataset.state ?? null,
      badgeText: text("live-badge"),
      counts: Object.fromEntries(
        ["pending", "running", "completed", "failed", "cancelled"].map((s) => [s, num(`count-${s}`)]),
      ),
      widths: Object.fromEntries(
        ["pending", "running", "completed", "failed", "cancelled"].map((s) => [
          s,
          document.getElementById(`seg-${s}`)?.style.width ?? null,
        ]),
      ),
      credits: Object.fromEntries(
        ["balance", "reserved", "used", "refunded", "granted"].map((k) => [k, num(`credit-${k}`)]),
      ),
      cancelResult: text("cancel-result"),
      createStatus: text("create-status"),
      items: [...document.querySelectorAll("#items tr")].map((tr) => ({
        url: tr.children[0]?.textContent,
        status: tr.querySelector("span.status")?.textContent,
      })),
      batchError: text("batch-error"),
      marker: window.__noReloadMarker ?? null,
    };
  });
}

/** Polls the page until `done(view)`; returns { ok, view }. Bounded in time and count. */
async function waitForPage(page, done, timeoutMs, intervalMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let view;
  for (let i = 0; i < Math.ceil(timeoutMs / intervalMs) + 1; i++) {
    view = await readPage(page);
    if (done(view)) return { ok: true, view };
    if (Date.now() + intervalMs > deadline) break;
    await sleep(intervalMs);
  }
  return { ok: false, view };
}

const brief = (v) => ({ status: v?.status, badge: v?.badge, ...v?.counts });

// ---------------------------------------------------------------- the story

async function story() {
  requireChromium(must);
  await mkdir(join(ROOT, "test-output"), { recursive: true });

  step("start: target server, wrangler dev (snapshot of the Worker), relay");
  const target = await startTargetServer({ delayMs: DELAY_MS });
  run.onCleanup(() => target.close());
  console.log(`  target server on ${target.url} (pages answer after ${DELAY_MS} ms)`);
  const { port, adminToken, workDir, wrangler } = await run.startWorker({
    snapshot: true,
    bundleMs: BOUNDS.bundle,
    readyMs: BOUNDS.ready,
    vars: { ALLOW_LOOPBACK_TARGETS: "true", FETCH_TIMEOUT_MS: "15000" },
  });
  const relay = await startRelay(port);
  run.onCleanup(() => relay.close());
  const pageBase = `http://127.0.0.1:${relay.port}`;
  console.log(`  the browser goes through the relay ${pageBase}`);

  step("POST /admin/accounts (Node fetch)");
  const acct = await api("POST", "/admin/accounts", {
    headers: { authorization: `Bearer ${adminToken}` },
    body: { name: "browser", credits: CREDITS },
  });
  must("account created with an API key", acct.status === 201 && typeof acct.body?.apiKey === "string", acct);
  const apiKey = acct.body.apiKey;
  const key = { "x-api-key": apiKey };

  step("GET / redirects to /dashboard");
  const root = await api("GET", "/");
  check("GET / answers 302 to /dashboard", root.status === 302 && root.headers.get("location") === "/dashboard", {
    status: root.status,
    location: root.headers.get("location"),
  });

  step("launch Chromium (fresh user data dir)");
  const userDataDir = join(workDir, "chromium");
  await mkdir(userDataDir, { recursive: true });
  const context = await launchChromiumContext(userDataDir, { viewport: { width: 1280, height: 900 } });
  run.onCleanup(() => context.close().catch(() => {}), { first: true });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(BOUNDS.ui);

  // Everything the page asks for, to check that the key never travels in a URL.
  const requestUrls = [];
  const socketUrls = [];
  const consoleErrors = [];
  let liveFrames = 0;
  let navigations = 0;
  const dialogs = [];
  page.on("request", (r) => requestUrls.push({ url: r.url(), apiKeyHeader: r.headers()["x-api-key"] === apiKey }));
  page.on("websocket", (ws) => {
    socketUrls.push(ws.url());
    ws.on("framereceived", (f) => {
      if (typeof f.payload === "string" && f.payload.startsWith('{"type":"batch"')) liveFrames++;
    });
  });
  page.on("console", (m) => m.type() === "error" && consoleErrors.push(`${m.text()} (${m.location()?.url ?? "?"})`));
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  page.on("framenavigated", (f) => f === page.mainFrame() && navigations++);
  page.on("dialog", async (d) => {
    dialogs.push({ type: d.type(), message: d.message() });
    await d.accept().catch(() => {});
  });

  step("open /dashboard, paste the key");
  const res = await page.goto(`${pageBase}/dashboard`, { waitUntil: "domcontentloaded" });
  must(
    "GET /dashboard answers 200 HTML",
    res?.status() === 200 && /text\/html/.test(res.headers()["content-type"] ?? ""),
    res?.status(),
  );
  await page.evaluate(() => {
    window.__noReloadMarker = "set-once";
  });
  await page.fill("#api-key", apiKey);
  await page.click("#use-key");
  const credits0 = await waitForPage(page, (v) => v.credits.balance === CREDITS, BOUNDS.ui);
  check(
    `credits shown: balance ${CREDITS}, reserved 0, used 0, refunded 0`,
    credits0.ok &&
      credits0.view.credits.reserved === 0 &&
      credits0.view.credits.used === 0 &&
      credits0.view.credits.refunded === 0,
    credits0.view?.credits,
  );
  const stored = await page.evaluate(() => ({
    session: Object.values(sessionStorage),
    local: Object.values(localStorage),
  }));
  check("the key is kept in sessionStorage only", stored.session.includes(apiKey) && !stored.local.includes(apiKey), {
    sessionHasKey: stored.session.includes(apiKey),
    localHasKey: stored.local.includes(apiKey),
  });
  check("the key field is emptied after use", (await page.inputValue("#api-key")) === "");

  step(`create a batch through the page: ${URL_COUNT} URLs, maxConcurrency 2`);
  const urls = Array.from({ length: URL_COUNT }, (_, i) => `${target.url}/page/${i}`);
  await page.fill("#urls", urls.join("\n"));
  await page.selectOption("#output", "json");
  await page.fill("#max-concurrency", "2");
  await page.click("#create-button");
  const selected = await waitForPage(
    page,
    (v) => /^[0-9a-f-]{36}$/.test(v.batchId ?? "") && v.counts.pending !== null,
    BOUNDS.ui,
  );
  must("the new batch is selected and shown", selected.ok, selected.view?.createStatus);
  const batchId = selected.view.batchId;
  console.log(`  batch ${batchId}: ${selected.view.createStatus}`);
  const reserved = await waitForPage(page, (v) => v.credits.reserved === URL_COUNT * PER_ITEM, BOUNDS.ui);
  check(
    `credits after create: reserved ${URL_COUNT * PER_ITEM}, balance ${CREDITS - URL_COUNT * PER_ITEM}`,
    reserved.ok && reserved.view.credits.balance === CREDITS - URL_COUNT * PER_ITEM,
    reserved.view?.credits,
  );

  step("watch the bar: running 2, then completions, without reload");
  const live = await waitForPage(page, (v) => v.badge === "live", BOUNDS.ui);
  check('the live badge says "live"', live.ok, live.view?.badgeText);
  const running = await waitForPage(page, (v) => v.counts.running === 2, BOUNDS.running);
  must(`the page shows running 2 within ${BOUNDS.running / 1000} s`, running.ok, brief(running.view));
  console.log(`  ${show(brief(running.view))}`);
  check(
    "the running segment of the bar has width (2 of 10 = 20%)",
    running.view.widths.running === "20%",
    running.view.widths,
  );
  await sleep(450); // the bar's width transition
  await page.screenshot({ path: SCREENSHOT.replace(/\.png$/, "-running.png"), fullPage: true }).catch(() => {});
  const firstDone = await waitForPage(page, (v) => v.counts.completed >= 2, BOUNDS.step);
  must("the bar moves: completed reaches 2", firstDone.ok, brief(firstDone.view));
  console.log(`  ${show(brief(firstDone.view))}`);
  check(
    "counts add up to 10",
    STATES.reduce((n, s) => n + firstDone.view.counts[s], 0) === URL_COUNT,
    firstDone.view.counts,
  );

  step("cut every connection (relay drops them): the page must reconnect by itself");
  const framesBeforeDrop = liveFrames;
  const dropped = relay.dropAll();
  console.log(`  dropped ${dropped} connections`);
  const reconnecting = await waitForPage(page, (v) => v.badge === "reconnecting", 5_000, 20);
  check('the badge shows "reconnecting" after the drop', reconnecting.ok, reconnecting.view?.badgeText);
  if (reconnecting.ok) console.log(`  badge: ${reconnecting.view.badgeText}`);
  const back = await waitForPage(page, (v) => v.badge === "live", BOUNDS.reconnect);
  check(`live again within ${BOUNDS.reconnect / 1000} s`, back.ok, back.view?.badgeText);
  const completedAtReconnect = back.view.counts.completed;
  const moved = await waitForPage(
    page,
    (v) => v.counts.completed > completedAtReconnect || (v.counts.completed >= 4 && liveFrames > framesBeforeDrop + 1),
    BOUNDS.step,
  );
  check("the bar keeps moving after the reconnect (more items completed)", moved.ok && liveFrames > framesBeforeDrop, {
    ...brief(moved.view),
    framesBeforeDrop,
    liveFrames,
  });
  console.log(`  ${show(brief(moved.view))}`);

  step("press Cancel while 2 items run, accept the confirmation");
  const runningAgain = await waitForPage(page, (v) => v.counts.running === 2 && v.counts.pending > 0, BOUNDS.step);
  must("the next 2 items run and some are still pending", runningAgain.ok, brief(runningAgain.view));
  const beforeCancel = runningAgain.view;
  console.log(`  ${show(brief(beforeCancel))}`);
  await page.click("#cancel-batch");
  // The API right after the cancel lands: which items run then (they must finish and be
  // charged) and which are done already. Polled briskly so no running item slips past.
  let atCancel = null;
  for (const deadline = Date.now() + BOUNDS.ui; Date.now() < deadline; await sleep(20)) {
    const snap = await api("GET", `/api/batch/scrape/${batchId}?limit=100`, { headers: key });
    if (snap.body?.status === "cancelled") {
      atCancel = snap.body;
      break;
    }
  }
  must("the API shows the batch cancelled after the click", atCancel !== null);
  const idsWith = (items, status) =>
    items
      .filter((i) => i.status === status)
      .map((i) => i.uuid)
      .sort();
  const runningAtCancel = idsWith(atCancel.items, "running");
  const completedAtCancel = idsWith(atCancel.items, "completed");
  console.log(`  at the cancel: running ${show(runningAtCancel)}, completed ${completedAtCancel.length}`);
  must(
    "some items were running when the cancel landed",
    runningAtCancel.length > 0,
    atCancel.items.map((i) => i.status),
  );
  const cancelled = await waitForPage(
    page,
    (v) => /^Cancelled \d+ items, refunded \d+ credits\.$/.test(v.cancelResult ?? ""),
    BOUNDS.ui,
  );
  check(
    "a confirmation dialog was shown, naming the batch",
    dialogs.length === 1 && dialogs[0].type === "confirm" && dialogs[0].message.includes(batchId),
    dialogs,
  );
  must('the page shows "Cancelled N items, refunded M credits."', cancelled.ok, cancelled.view?.cancelResult);
  const [, nCancelled, nRefunded] = /^Cancelled (\d+) items, refunded (\d+) credits\.$/
    .exec(cancelled.view.cancelResult)
    .map(Number);
  console.log(`  ${cancelled.view.cancelResult} (pending shown just before: ${beforeCancel.counts.pending})`);
  check(`refund = ${PER_ITEM} credits x cancelled items`, nRefunded === PER_ITEM * nCancelled && nCancelled > 0, {
    nCancelled,
    nRefunded,
  });
  check("cancelled items <= pending shown just before the click", nCancelled <= beforeCancel.counts.pending, {
    nCancelled,
    pendingBefore: beforeCancel.counts.pending,
  });

  step("the running items finish; the final counts and credits");
  const drained = await waitForPage(
    page,
    (v) => v.status === "cancelled" && v.counts.running === 0 && v.counts.pending === 0,
    BOUNDS.drained,
  );
  must("the page shows status cancelled, running 0, pending 0", drained.ok, brief(drained.view));
  const final = drained.view;
  console.log(`  ${show(brief(final))}`);
  check(`the page shows cancelled ${nCancelled}`, final.counts.cancelled === nCancelled, final.counts);
  check(
    "failed 0, and completed + cancelled = 10",
    final.counts.failed === 0 && final.counts.completed + final.counts.cancelled === URL_COUNT,
    final.counts,
  );
  const used = final.counts.completed * PER_ITEM;
  const expectedCredits = { balance: CREDITS - used, reserved: 0, used, refunded: nRefunded, granted: CREDITS };
  const settled = await waitForPage(page, (v) => show(v.credits) === show(expectedCredits), 8_000);
  check(`the page's credits settle to ${show(expectedCredits)} without a click`, settled.ok, settled.view?.credits);

  const truth = await api("GET", `/api/batch/scrape/${batchId}?limit=100`, { headers: key });
  const items = truth.body?.items ?? [];
  const byId = new Map(items.map((i) => [i.uuid, i]));
  check(
    `the ${runningAtCancel.length} items running at the cancel all completed, each charged ${PER_ITEM}`,
    runningAtCancel.every((id) => byId.get(id)?.status === "completed" && byId.get(id)?.creditsUsed === PER_ITEM),
    runningAtCancel.map((id) => ({ id, status: byId.get(id)?.status, creditsUsed: byId.get(id)?.creditsUsed })),
  );
  check(
    "no other item completed after the cancel: completed = done before it + running at it; the rest cancelled",
    show(idsWith(items, "completed")) === show([...completedAtCancel, ...runningAtCancel].sort()) &&
      idsWith(items, "cancelled").length === URL_COUNT - completedAtCancel.length - runningAtCancel.length,
    { completed: idsWith(items, "completed"), completedAtCancel, runningAtCancel },
  );
  check(
    `the charge after the cancel is ${runningAtCancel.length} x ${PER_ITEM} (the running items), no more`,
    truth.body?.creditsUsed - atCancel.creditsUsed === runningAtCancel.length * PER_ITEM &&
      atCancel.creditsUsed === completedAtCancel.length * PER_ITEM,
    { usedAtCancel: atCancel.creditsUsed, usedAtEnd: truth.body?.creditsUsed },
  );
  const truthCounts = Object.fromEntries(STATES.map((s) => [s, truth.body?.[`${s}Count`]]));
  check("the page's counts equal the API's", show(truthCounts) === show(final.counts), {
    page: final.counts,
    api: truthCounts,
  });
  const truthCredits = await api("GET", "/api/credits", { headers: key });
  check(
    "the page's credits equal the API's",
    show((await readPage(page)).credits) ===
      show({
        balance: truthCredits.body?.balance,
        reserved: truthCredits.body?.reserved,
        used: truthCredits.body?.used,
        refunded: truthCredits.body?.refunded,
        granted: truthCredits.body?.granted,
      }),
    truthCredits.body,
  );
  const itemsShown = await waitForPage(
    page,
    (v) =>
      v.items.length === URL_COUNT &&
      v.items.filter((i) => i.status === "cancelled").length === nCancelled &&
      v.items.filter((i) => i.status === "completed").length === final.counts.completed,
    5_000,
  );
  check("the item list shows every item with its final status", itemsShown.ok, itemsShown.view?.items);

  step("the usage chart: today's bars are the API's figures");
  const usageTruth = await api("GET", "/api/usage-stats?range=7d", { headers: key });
  const today = usageTruth.body?.data?.at(-1);
  const expectedBars = today && {
    reserved: today.creditsReserved,
    charged: today.creditsCharged,
    refunded: today.creditsRefunded,
  };
  check(
    "GET /api/usage-stats?range=7d: today reserved 20, charged and refunded as the batch's",
    show(expectedBars) ===
      show({ reserved: URL_COUNT * PER_ITEM, charged: truth.body?.creditsUsed, refunded: truth.body?.creditsRefunded }),
    usageTruth.body,
  );
  const chartBars = () =>
    page.evaluate(() => {
      const bars = [...document.querySelectorAll("#usage-chart rect")];
      const last = bars.length > 0 ? bars[bars.length - 1].dataset.period : null;
      return {
        bars: bars.length,
        period: last,
        svgNamespace: document.getElementById("usage-chart")?.namespaceURI ?? null,
        today: Object.fromEntries(
          bars.filter((b) => b.dataset.period === last).map((b) => [b.dataset.metric, Number(b.dataset.value)]),
        ),
        tallest: Math.max(0, ...bars.map((b) => Number(b.getAttribute("height")))),
        summary: document.getElementById("usage-summary")?.textContent ?? "",
      };
    });
  let chart = await chartBars();
  for (let i = 0; i < 50 && show(chart.today) !== show(expectedBars); i++) {
    await sleep(100);
    chart = await chartBars();
  }
  check(
    "the chart draws 7 days x 3 bars as inline SVG",
    chart.bars === 21 && chart.svgNamespace === "http://www.w3.org/2000/svg",
    chart,
  );
  check("the chart's bars for today equal the API's figures (no reload)", show(chart.today) === show(expectedBars), {
    page: chart.today,
    api: expectedBars,
  });
  check("the tallest bar is drawn (non-zero height)", chart.tallest > 0, chart.tallest);
  check(
    "the summary names the range's items by state",
    chart.summary.includes(`cancelled ${nCancelled}`) && chart.summary.includes("reserved 20"),
    chart.summary,
  );
  await page.selectOption("#usage-range", "weekly");
  let weekly = await chartBars();
  for (let i = 0; i < 50 && !(weekly.period ?? "").includes("–"); i++) {
    await sleep(100);
    weekly = await chartBars();
  }
  check(
    "switching to 7 weeks redraws: 7 weeks x 3 bars, this week's reserved 20",
    weekly.bars === 21 && (weekly.period ?? "").includes("–") && weekly.today.reserved === URL_COUNT * PER_ITEM,
    weekly,
  );

  step("open a completed item's result");
  await page.click("#items button.view-result");
  const resultText = await page
    .waitForFunction(
      () => {
        const t = document.getElementById("result-view")?.textContent ?? "";
        return t && t !== "Loading…" ? t : null;
      },
      null,
      { timeout: BOUNDS.ui },
    )
    .then((h) => h.jsonValue())
    .catch((e) => `error: ${e.message}`);
  check(
    'the result is shown (JSON with the page\'s title "Page n")',
    /"title": "Page \d+"/.test(resultText),
    resultText.slice(0, 200),
  );

  await downloadResults(page, apiKey, batchId, api);

  const finalView = await readPage(page);
  check("the page was never reloaded", navigations === 1 && finalView.marker === "set-once", {
    navigations,
    marker: finalView.marker,
  });
  check("live batch messages arrived over the WebSocket (at least 5)", liveFrames >= 5, liveFrames);
  check(
    "the page opened its WebSocket on /api/batch/scrape/<id>/live, at least twice (reconnect)",
    socketUrls.length >= 2 && socketUrls.every((u) => u.endsWith(`/api/batch/scrape/${batchId}/live`)),
    socketUrls,
  );
  const leaks = [...requestUrls.map((r) => r.url), ...socketUrls].filter(
    (u) => u.includes(apiKey) || u.includes(encodeURIComponent(apiKey)),
  );
  check(
    `the key is in none of the ${requestUrls.length + socketUrls.length} URLs the page requested`,
    leaks.length === 0,
    leaks,
  );
  check(
    "API calls carried the key as the x-api-key header",
    requestUrls.some((r) => r.apiKeyHeader && r.url.includes("/api/credits")),
    requestUrls.length,
  );
  check(
    "no script errors in the page",
    consoleErrors.filter((e) => !/WebSocket|ERR_CONNECTION|net::/.test(e)).length === 0,
    consoleErrors,
  );

  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  housekeeping(`screenshot saved to ${SCREENSHOT.replace(`${ROOT}/`, "")}`, existsSync(SCREENSHOT));

  step("the key appears nowhere in wrangler's output or logs");
  const logText = [wrangler.log.join("\n")];
  for (const f of await readdir(join(workDir, "logs")).catch(() => []))
    logText.push(await readFile(join(workDir, "logs", f), "utf8").catch(() => ""));
  const secret = apiKey.split("_").slice(3).join("_");
  check(
    "wrangler's output and debug log never contain the key (nor its secret part)",
    logText.every((t) => !t.includes(apiKey) && !t.includes(secret)),
    "the key was logged",
  );
}

// ---------------------------------------------------------------- main

await run.run(story);
