// Checks and progress output shared by the scripted stories (e2e, hostile, browser test, docs test).

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
    console.log(
      `  ${ok ? "ok  " : "FAIL"}  ${name}${!ok && detail !== undefined ? `\n        got: ${show(detail)}` : ""}`,
    );
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
      // Once a signal or the watchdog is stopping the run, the story's calls fail by our own doing.
      if (!finishing()) check("story ran without an unexpected error", false, err?.stack ?? String(err));
      await finish(`unexpected error: ${err?.message ?? err}`);
    }
  }
}
