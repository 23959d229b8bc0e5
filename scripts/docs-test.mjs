// The API reference (GET /docs) in a real browser with the network cut off (run with
// `npm run test:docs`).
//
// Starts `wrangler dev` on a snapshot of the Worker and Debian's Chromium driven by
// playwright-core. Every request the page makes to any origin other than the local server is
// aborted (and counted), as if the machine were offline. The reference must render from
// /openapi.json with only what the Worker serves, no request may leave the origin, and the
// page's CSP must report no violation. Saves test-output/docs.png.
//
// Prints `docs: N checks passed, M failed` and exits non-zero unless every check passed.
// Bounded: the whole run stops after BOUNDS.total. Every process it starts (wrangler's
// process group, Chromium) is stopped at the end, also on failure.
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { ROOT, sleep } from "./lib/wrangler.mjs";
import { show } from "./lib/checks.mjs";
import { launchChromium, requireChromium } from "./lib/chromium.mjs";
import { createStoryRun } from "./lib/story-run.mjs";

const SCREENSHOT = join(ROOT, "test-output", "docs.png");
/** The cancel route's summary in the OpenAPI document: its operation must open in the page. */
const CANCEL = "Cancel a batch";

const BOUNDS = {
  bundle: 60_000, // wrangler deploy --dry-run of the snapshot
  ready: 60_000, // wrangler dev answers GET /healthz
  render: 30_000, // the page loads its script and shows the first operations
  ui: 10_000, // the page reacts to a click
  settle: 2_000, // quiet time after rendering, for late requests (fonts, lazy chunks)
  request: 10_000, // any single HTTP request from this script
  stopGrace: 5_000, // SIGTERM -> SIGKILL for wrangler's process group
  total: 180_000, // the whole run, whatever happens
};

const run = createStoryRun({
  name: "docs",
  totalMs: BOUNDS.total,
  requestMs: BOUNDS.request,
  stopGraceMs: BOUNDS.stopGrace,
  stopping: "Chromium and wrangler",
});
const { check, housekeeping, must, step } = run;

// ---------------------------------------------------------------- the story

async function story() {
  requireChromium(must);
  await mkdir(join(ROOT, "test-output"), { recursive: true });

  step("start wrangler dev (snapshot of the Worker)");
  const { base } = await run.startWorker({ snapshot: true, bundleMs: BOUNDS.bundle, readyMs: BOUNDS.ready });

  step("launch Chromium; cut off every origin but the local server");
  const browser = await launchChromium();
  run.onCleanup(() => browser.close().catch(() => {}), { first: true });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const local = [];
  const outside = [];
  await context.route("**/*", (route) => {
    const url = route.request().url();
    if (new URL(url).origin === base) {
      local.push(url);
      return route.continue();
    }
    outside.push(url);
    return route.abort("internetdisconnected");
  });
  // Collected in the page before any of its scripts runs (CSP does not apply to init scripts).
  await context.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener("securitypolicyviolation", (e) =>
      window.__cspViolations.push({
        directive: e.effectiveDirective,
        blocked: e.blockedURI,
        source: e.sourceFile,
        line: e.lineNumber,
      }),
    );
  });
  const page = await context.newPage();
  page.setDefaultTimeout(BOUNDS.ui);
  const cspConsole = [];
  const pageErrors = [];
  page.on("console", (m) => /Content Security Policy/i.test(m.text()) && cspConsole.push(m.text()));
  page.on("pageerror", (e) => pageErrors.push(String(e)));

  step("open /docs");
  const res = await page.goto(`${base}/docs`, { waitUntil: "domcontentloaded", timeout: BOUNDS.render });
  must(
    "GET /docs answers 200 HTML",
    res?.status() === 200 && /^text\/html/.test(res.headers()["content-type"] ?? ""),
    res?.status(),
  );
  check(
    "the page carries its CSP header",
    /script-src 'self'/.test(res.headers()["content-security-policy"] ?? ""),
    res.headers()["content-security-policy"],
  );

  step("the reference renders from /openapi.json");
  const visible = (locator) =>
    locator
      .first()
      .waitFor({ state: "visible", timeout: BOUNDS.render })
      .then(
        () => true,
        () => false,
      );
  must(
    'the first group\'s operations are listed ("API reference (HTML)")',
    await visible(page.getByText("API reference (HTML)", { exact: true })),
    // biome-ignore lint/performance/useDomNodeTextContent: what a reader sees, not the scripts' text
    await page.evaluate(() => document.body.innerText.slice(0, 300)),
  );
  await page.getByRole("button", { name: "Open Group - Batches" }).click();
  await page.getByText(CANCEL, { exact: true }).first().click();
  check(
    `the cancel route's operation opens: heading "${CANCEL}" visible`,
    await visible(page.getByRole("heading", { name: CANCEL })),
  );
  await page.screenshot({ path: SCREENSHOT });
  housekeeping(`screenshot saved to ${SCREENSHOT.replace(`${ROOT}/`, "")}`, existsSync(SCREENSHOT));
  const script = local.find((u) => /\/docs\/scalar\/[\d.]+\/standalone\.js$/.test(u));
  check("the script came from this server's versioned URL", script !== undefined, local);
  check("the page loaded /openapi.json", local.includes(`${base}/openapi.json`), local);

  step('"Test Request" on GET /healthz: the request goes straight to this server (no proxy)');
  const before = local.length;
  await page.getByRole("button", { name: /Test Request.*get \/healthz/i }).click();
  await page.getByRole("button", { name: /^Send/ }).first().click();
  check('the client shows "200 OK"', await visible(page.getByText("200 OK", { exact: true })));
  check(
    "the page itself sent GET /healthz to this server",
    local.slice(before).includes(`${base}/healthz`),
    local.slice(before),
  );
  await sleep(BOUNDS.settle);

  step("nothing left the origin; the CSP was never violated");
  console.log(`  ${local.length} requests to ${base}: ${show(local.map((u) => u.slice(base.length)))}`);
  check(`no request to another origin (${outside.length} blocked)`, outside.length === 0, outside);
  const violations = await page.evaluate(() => window.__cspViolations);
  check(`no CSP violation reported (${violations.length})`, violations.length === 0, violations);
  check("no CSP complaint on the console", cspConsole.length === 0, cspConsole);
  check("no uncaught error in the page", pageErrors.length === 0, pageErrors);
}

// ---------------------------------------------------------------- main

await run.run(story);
