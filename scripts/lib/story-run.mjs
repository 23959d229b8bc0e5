// The frame of a scripted story against `wrangler dev` (scripts/e2e.mjs, scripts/hostile.mjs,
// scripts/browser-test.mjs, scripts/docs-test.mjs):
// a work dir, wrangler in its own process group on a snapshot of the Worker, HTTP helpers whose
// requests die with the run, a watchdog, Ctrl-C handling, and one `finish` that stops every
// process the story started and prints "<name>: N checks passed, M failed". Node built-ins only.
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createChecks, runStory, show, StoryStopped } from "./checks.mjs";
import { requestJson } from "./http.mjs";
import { freePorts, groupAlive, signalGroup, sleep, snapshotWorker, startWrangler, stopGroup } from "./wrangler.mjs";

const POLL_NOISE = /^\[wrangler:info\] GET \S+ 200 OK/;

/**
 * @param {{ name: string, totalMs: number, requestMs?: number, stopGraceMs?: number, pollMs?: number, stopping?: string }} options
 *   `requestMs` bounds any single request; `totalMs` the whole run, whatever happens; `stopping`
 *   names what the story stops at the end (printed).
 */
export function createStoryRun({
  name,
  totalMs,
  requestMs = 10_000,
  stopGraceMs = 5_000,
  pollMs = 100,
  stopping = "wrangler and the target server",
}) {
  const checks = createChecks();
  const { results, elapsed, check, housekeeping, must } = checks;
  /** Aborted when wrangler dies or the run is being stopped: no request outlives the run. */
  const stopRequests = new AbortController();
  /** Things to close before wrangler stops (a browser: 5 s each) and after it (target servers…: 2 s each). */
  const closersFirst = [];
  const closers = [];
  let wrangler; // { child, pgid, exited, exit, log, buildError, buildFailed }
  let workDir;
  let base;
  let cleaning;
  let finishing;
  let stoppedAt = null;
  /** Lines the story prints just before the count (set by `run`). */
  let summary = () => [];

  /** Stops everything; idempotent, bounded. Keeps wrangler's debug log on failure. False if wrangler outlived SIGKILL. */
  function cleanup(keepLogs) {
    cleaning ??= (async () => {
      for (const close of closersFirst) await Promise.race([close(), sleep(5_000)]);
      let stopped = true;
      if (wrangler?.pgid) {
        stopped = await stopGroup(wrangler.pgid, stopGraceMs, () =>
          console.log(`[${elapsed()}] wrangler did not stop on SIGTERM within ${stopGraceMs} ms: SIGKILL`),
        );
      }
      for (const close of closers) await Promise.race([close(), sleep(2_000)]);
      if (workDir) {
        // On failure only wrangler's debug log stays (state, bundle, a browser profile go).
        const removed = keepLogs
          ? (await readdir(workDir).catch(() => [])).filter((f) => f !== "logs").map((f) => join(workDir, f))
          : [workDir];
        for (const dir of removed) await rm(dir, { recursive: true, force: true, maxRetries: 3 }).catch(() => {});
        if (keepLogs) console.log(`[${elapsed()}] wrangler's debug log kept in ${join(workDir, "logs")}`);
      }
      return stopped;
    })();
    return cleaning;
  }

  /** Stops everything, prints `summary()` lines and the count, and exits (0 only if every check passed). Runs once. */
  function finish(reason, exitCode) {
    finishing ??= (async () => {
      clearTimeout(watchdog);
      if (reason) stoppedAt = reason;
      stopRequests.abort(new Error("stopping"));
      console.log(`\n[${elapsed()}] stopping ${stopping}`);
      const stopped = await cleanup(stoppedAt !== null || results.some((r) => !r.ok));
      // Our own processes stopped: housekeeping, counted only when it fails.
      if (wrangler)
        housekeeping(`wrangler and its workerd children stopped (process group ${wrangler.pgid} empty)`, stopped);
      const passed = results.filter((r) => r.ok).length;
      const failed = results.length - passed;
      const ok = failed === 0 && stoppedAt === null && results.length > 0;
      if (!ok && wrangler) {
        // Our own polling fills wrangler's access log: leave out the successful GETs.
        const lines = wrangler.log.filter((l) => !POLL_NOISE.test(l));
        const omitted = wrangler.log.length - lines.length;
        console.log(
          `\n--- last 40 lines of wrangler output${omitted ? ` (${omitted} "GET ... 200 OK" access-log lines left out)` : ""} ---`,
        );
        for (const line of lines.slice(-40)) console.log(`  | ${line}`);
        console.log(`--- end of wrangler output ---`);
      }
      if (stoppedAt) console.log(`\nstory stopped early: ${stoppedAt}`);
      for (const line of summary()) console.log(line);
      console.log(`${name}: ${passed} checks passed, ${failed} failed (${elapsed()})`);
      process.exit(exitCode ?? (ok ? 0 : 1));
    })();
    return finishing;
  }

  const watchdog = setTimeout(() => {
    console.log(`\n[${elapsed()}] TIMEOUT: the run took longer than ${totalMs / 1000} s`);
    check(`whole run within ${totalMs / 1000} s`, false);
    finish("timeout");
  }, totalMs);
  // Last resort if the process goes down some other way: synchronous, so it works in "exit".
  process.on("exit", () => {
    if (wrangler?.pgid && groupAlive(wrangler.pgid)) signalGroup(wrangler.pgid, "SIGKILL");
  });
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.once(sig, () => {
      console.log(`\n[${elapsed()}] ${sig}: stopping`);
      finish(`interrupted by ${sig}`, 130);
    });
  }

  /** A request to the Worker (see requestJson); bounded by `requestMs` and cut when the run stops. */
  async function api(method, path, { body, headers, timeoutMs = requestMs } = {}) {
    try {
      return await requestJson(`${base}${path}`, method, {
        body,
        headers,
        signal: AbortSignal.any([AbortSignal.timeout(Math.min(timeoutMs, requestMs)), stopRequests.signal]),
      });
    } catch (err) {
      if (stopRequests.signal.aborted) throw new StoryStopped(stopRequests.signal.reason?.message ?? "stopped");
      throw new Error(`${method} ${path}: ${err?.cause?.code ?? err?.name ?? "error"}: ${err?.message ?? err}`);
    }
  }

  /**
   * Calls `read({ timeoutMs })` every `intervalMs` until `done(value)` or `timeoutMs` passes (bounded in
   * count too). Errors from `read` count as "not yet" (but StoryStopped ends the story). Returns the last value read.
   */
  async function pollUntil(read, done, { timeoutMs, intervalMs = pollMs }) {
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

  /**
   * Starts `wrangler dev` (own state dir, random admin token and key MAC secret, `vars` on top) and waits for
   * GET /healthz. `snapshot`: run a bundle of the Worker as it is now, so edits meanwhile do not
   * reload it. Resolves to { base, port, adminToken, workDir, wrangler } (wrangler: startWrangler's
   * state, its `log` the last lines of output; its debug log is in workDir/logs); a failed start stops the story.
   */
  async function startWorker({ vars = {}, readyMs = 60_000, snapshot = false, bundleMs = 120_000 } = {}) {
    workDir = await mkdtemp(join(tmpdir(), `batch-scrape-${name}-`));
    const config = snapshot
      ? await Promise.race([
          snapshotWorker(workDir),
          sleep(bundleMs).then(() => Promise.reject(new Error(`bundling took longer than ${bundleMs / 1000} s`))),
        ])
      : undefined;
    const [apiPort, inspectorPort] = await freePorts(2);
    const adminToken = randomBytes(24).toString("hex");
    base = `http://127.0.0.1:${apiPort}`;
    wrangler = startWrangler({
      port: apiPort,
      inspectorPort,
      config,
      persistTo: join(workDir, "state"),
      logDir: join(workDir, "logs"),
      vars: {
        ...vars,
        ADMIN_TOKEN: adminToken,
        API_KEY_MAC_SECRET: randomBytes(32).toString("hex"),
        COOKIE_SECRET: randomBytes(32).toString("hex"),
      },
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
      Promise.race([
        api("GET", "/healthz", opts).then((r) => r.status),
        wrangler.buildFailed.then(() => "build failed"),
      ]);
    const ready = await pollUntil(
      async (opts) => (wrangler.exit ? "exited" : wrangler.buildError !== null ? "build failed" : await healthz(opts)),
      (s) => s === 200 || s === "exited" || s === "build failed",
      { timeoutMs: readyMs, intervalMs: 250 },
    );
    must(
      `GET /healthz answers 200 within ${readyMs / 1000} s`,
      ready.value === 200 && !wrangler.exit,
      wrangler.exit
        ? `wrangler exited early: ${show(wrangler.exit)}`
        : ready.value === "build failed"
          ? `wrangler could not build the Worker: ${wrangler.buildError} (see its output below)`
          : (ready.error?.message ?? ready.value),
    );
    console.log(`  ready after ${elapsed()}`);
    return { base, port: apiPort, adminToken, workDir, wrangler };
  }

  /** Runs `story` to its end (see runStory), then finishes; `summary()` lines go just before the count. */
  function run(story, summaryLines = () => []) {
    summary = summaryLines;
    return runStory(story, {
      results,
      check,
      finish: (reason) => finish(reason),
      finishing: () => finishing !== undefined,
    });
  }

  /** `close` runs at the end, after wrangler stops; with `{ first: true }` before it (e.g. a browser). */
  const onCleanup = (close, { first = false } = {}) => (first ? closersFirst : closers).push(close);

  return { ...checks, api, pollUntil, startWorker, run, onCleanup };
}
