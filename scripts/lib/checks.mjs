// Checks and progress output shared by the scripted stories (e2e, browser test, docs test).
import { groupAlive, signalGroup } from "./wrangler.mjs";

export class StoryStopped extends Error {}

/** A value as one line of output, cut at 600 characters. */
export function show(value) {
  if (typeof value === "string") return value;
  try {
    const s = JSON.stringify(value);
    return s.length > 600 ? `${s.slice(0, 600)}…` : s;
  } catch {
    return String(value);
  }
}

/** Records checks and prints them; `results` is what the summary line counts. */
export function createChecks() {
  const results = [];
  const started = Date.now();
  const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;

  /** Records and prints one check; `detail` is printed when it fails. */
  function check(name, cond, detail) {
    const ok = Boolean(cond);
    results.push({ name, ok });
    console.log(`  ${ok ? "ok  " : "FAIL"}  ${name}${!ok && detail !== undefined ? `\n        got: ${show(detail)}` : ""}`);
    return ok;
  }

  /**
   * Housekeeping, not a product check (a screenshot saved, our processes stopped): printed,
   * and counted only when it fails, so it never adds to the passed count.
   */
  function housekeeping(name, cond, detail) {
    if (!cond) return check(name, false, detail);
    console.log(`  done  ${name}`);
    return true;
  }

  /** A check the rest of the story depends on: when it fails, the story stops here. */
  function must(name, cond, detail) {
    if (!check(name, cond, detail)) throw new StoryStopped(name);
  }

  function step(text) {
    console.log(`\n[${elapsed()}] ${text}`);
  }

  return { results, elapsed, check, housekeeping, must, step };
}

/**
 * Runs a story to its end, then `finish(null)`. A failed `must` stops it (`finish(why)`);
 * any other error is a failed check. `finishing()` is true once a signal or the watchdog
 * has begun finishing (the stop that follows is not a failure of its own).
 */
export async function runStory(story, { results, check, finish, finishing }) {
  try {
    await story();
    await finish(null);
  } catch (err) {
    if (err instanceof StoryStopped) {
      if (!finishing() && !results.some((r) => !r.ok)) check("the story runs to its end", false, err.message);
      await finish(err.message);
    } else {
      check("story ran without an unexpected error", false, err?.stack ?? String(err));
      await finish(`unexpected error: ${err?.message ?? err}`);
    }
  }
}

/**
 * How a story script ends, whatever happens: `finish(reason, exitCode)` runs once, on the
 * story's end, after `totalMs` (a failed check), or on SIGINT/SIGTERM/SIGHUP (exit 130). It
 * calls `onStop()`, then `cleanup(failedSoFar)` (resolves to whether wrangler's process group
 * is gone), prints wrangler's last output if anything failed (lines matching `noise` left
 * out) and the summary line `<name>: N checks passed, M failed`, and exits 0 only if every
 * check passed. If the process exits some other way, wrangler's group is killed there and
 * then. `wrangler()` returns startWrangler's state once there is one.
 * Returns { finish, finishing } for runStory.
 */
export function storyEnd({ name, totalMs, checks, wrangler, cleanup, stopping, onStop = () => {}, noise }) {
  const { results, check, elapsed, housekeeping } = checks;
  let stoppedAt = null;
  let finishing;
  const watchdog = setTimeout(() => {
    console.log(`\n[${elapsed()}] TIMEOUT: the run took longer than ${totalMs / 1000} s`);
    check(`whole run within ${totalMs / 1000} s`, false);
    finish("timeout");
  }, totalMs);

  function finish(reason, exitCode) {
    finishing ??= (async () => {
      clearTimeout(watchdog);
      if (reason) stoppedAt = reason;
      onStop();
      console.log(`\n[${elapsed()}] stopping ${stopping}`);
      const failedSoFar = stoppedAt !== null || results.some((r) => !r.ok);
      const stopped = await cleanup(failedSoFar);
      const w = wrangler();
      // Our own processes stopped: housekeeping, counted only when it fails.
      if (w) housekeeping(`wrangler and its workerd children stopped (process group ${w.pgid} empty)`, stopped);
      const passed = results.filter((r) => r.ok).length;
      const failed = results.length - passed;
      const ok = failed === 0 && stoppedAt === null && results.length > 0;
      if (!ok && w) {
        const lines = noise ? w.log.filter((l) => !noise.test(l)) : w.log;
        const omitted = w.log.length - lines.length;
        console.log(`\n--- last 40 lines of wrangler output${omitted ? ` (${omitted} lines matching ${noise} left out)` : ""} ---`);
        for (const line of lines.slice(-40)) console.log(`  | ${line}`);
        console.log("--- end of wrangler output ---");
      }
      if (stoppedAt) console.log(`\nstory stopped early: ${stoppedAt}`);
      console.log(`${name}: ${passed} checks passed, ${failed} failed (${elapsed()})`);
      process.exit(exitCode ?? (ok ? 0 : 1));
    })();
    return finishing;
  }

  // Last resort if the process goes down some other way: synchronous, so it works in "exit".
  process.on("exit", () => {
    const w = wrangler();
    if (w?.pgid && groupAlive(w.pgid)) signalGroup(w.pgid, "SIGKILL");
  });
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
    process.once(sig, () => {
      console.log(`\n[${elapsed()}] ${sig}: stopping`);
      finish(`interrupted by ${sig}`, 130);
    });
  }
  return { finish, finishing: () => finishing !== undefined };
}
