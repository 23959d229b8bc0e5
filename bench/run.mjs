// `npm run bench`: the hot paths, measured, each beside a baseline taken in the same run.
//
// 1. The in-workerd benches (bench/*.bench.test.ts, through bench/vitest.bench.config.ts);
//    their rows come back in the test meta of vitest's JSON report.
// 2. The HTTP bench (bench/http.mjs) against `wrangler dev` on 127.0.0.1.
// 3. The results download of a large batch (bench/results-stream.mjs): time per 10k lines
//    and the workerd process's memory while it streams, against `wrangler dev`.
// Then one table is printed and written to bench/results/<time>.json, latest.json and
// latest.md, so later runs can be compared. Never part of `npm test` or CI.
//
// Both parts run one after the other (they measure throughput; they must not share the
// cores), each in its own process group, stopped on timeout, error or Ctrl-C.
//
// Usage: node bench/run.mjs [--only objects|http|http:<section>|results] [--quick]   (--quick: shorter HTTP runs;
//        http:<section> runs one section of bench/http.mjs, e.g. http:delete-size)
import { spawn, execFileSync } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(fileURLToPath(new URL("..", import.meta.url)));
const RESULTS = join(ROOT, "bench", "results");
const args = process.argv.slice(2);
const onlyArg = args.includes("--only") ? args[args.indexOf("--only") + 1] : null;
const [only, httpSection] = onlyArg === null ? [null, null] : onlyArg.split(":");
const quick = args.includes("--quick");
const LIMITS = { objects: 7 * 60_000, http: 7 * 60_000, results: 8 * 60_000 };

/** Where the in-workerd bench keeps its objects' storage: BENCH_STATE_DIR, else tmpfs when writable. */
const OBJECT_STATE_DIR = process.env.BENCH_STATE_DIR ?? (writable("/dev/shm") ? "/dev/shm" : tmpdir());

function writable(dir) {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0)}s`;
const children = new Set();

/** Runs a child in its own process group; kills the group on timeout. Resolves to its exit code. */
function run(label, argv, timeoutMs, env = process.env) {
  return new Promise((resolveRun) => {
    console.log(`[bench ${elapsed()}] ${label}: ${argv.slice(1).join(" ")}`);
    const child = spawn(process.execPath, argv, {
      cwd: ROOT,
      detached: true,
      stdio: ["ignore", "inherit", "inherit"],
      env,
    });
    children.add(child.pid);
    const timer = setTimeout(() => {
      console.log(`[bench ${elapsed()}] ${label}: over ${timeoutMs / 1000} s, stopping it`);
      killGroup(child.pid, "SIGTERM");
      setTimeout(() => killGroup(child.pid, "SIGKILL"), 5_000).unref();
    }, timeoutMs);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      children.delete(child.pid);
      // Whatever it left behind in its group (workerd) goes too.
      killGroup(child.pid, "SIGKILL");
      resolveRun(code ?? (signal ? 1 : 0));
    });
  });
}

function killGroup(pgid, signal) {
  try {
    process.kill(-pgid, signal);
  } catch {
    /* gone */
  }
}

for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.once(sig, () => {
    for (const pid of children) killGroup(pid, "SIGTERM");
    setTimeout(() => {
      for (const pid of children) killGroup(pid, "SIGKILL");
      process.exit(130);
    }, 3_000);
  });
}
process.on("exit", () => {
  for (const pid of children) killGroup(pid, "SIGKILL");
});

// ---------------------------------------------------------------- formatting

function formatValue(value, unit) {
  if (value === null || value === undefined || Number.isNaN(value)) return "n/a";
  if (unit === "bytes")
    return value >= 1e6
      ? `${(value / 1e6).toFixed(1)} MB`
      : value >= 1e4
        ? `${(value / 1e3).toFixed(0)} kB`
        : `${value.toFixed(0)} B`;
  const digits = Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  const n = value.toLocaleString("en-US", { minimumFractionDigits: 0, maximumFractionDigits: digits });
  return unit === "x" ? `${n}x` : `${n} ${unit}`;
}

function formatRatio(ratio) {
  if (ratio === null || ratio === undefined || !Number.isFinite(ratio)) return "n/a";
  if (ratio !== 0 && Math.abs(ratio) < 0.01) return `${ratio.toExponential(1)}x`;
  return `${ratio.toFixed(2)}x`;
}

function table(rows) {
  const cells = rows.map((r) => [
    r.section,
    r.what,
    formatValue(r.value, r.unit),
    r.baseline,
    formatValue(r.baselineValue, r.unit === "x" ? "x" : r.unit),
    formatRatio(r.ratio),
    r.note ?? "",
  ]);
  const head = ["section", "measure", "value", "baseline (same run)", "baseline", "ratio", "note"];
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => String(c[i]).length)));
  const line = (c) =>
    c
      .map((v, i) => (i === 2 || i === 4 || i === 5 ? String(v).padStart(widths[i]) : String(v).padEnd(widths[i])))
      .join("  ");
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...cells.map(line)].join("\n");
}

function markdown(rows) {
  const esc = (s) => String(s).replace(/\|/g, "\\|");
  const out = [
    "| section | measure | value | baseline (same run) | baseline | ratio | note |",
    "| --- | --- | ---: | --- | ---: | ---: | --- |",
  ];
  for (const r of rows) {
    out.push(
      `| ${[r.section, r.what, formatValue(r.value, r.unit), r.baseline, formatValue(r.baselineValue, r.unit), formatRatio(r.ratio), r.note ?? ""].map(esc).join(" | ")} |`,
    );
  }
  return out.join("\n");
}

function git() {
  try {
    const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).trim();
    const dirty =
      execFileSync("git", ["status", "--porcelain", "--", "src"], { cwd: ROOT, encoding: "utf8" }).trim().length > 0;
    return { commit, srcDirty: dirty };
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------- the run

const work = await mkdtemp(join(tmpdir(), "batch-scrape-bench-run-"));
const rows = [];
const details = {};
const failures = [];
const loadBefore = loadavg();

try {
  if (only === null || only === "objects") {
    const report = join(work, "vitest.json");
    const code = await run(
      "objects (workerd)",
      [
        join(ROOT, "node_modules", "vitest", "vitest.mjs"),
        "run",
        "--silent",
        "--config",
        "bench/vitest.bench.config.ts",
        "--reporter=default",
        "--reporter=json",
        `--outputFile.json=${report}`,
      ],
      LIMITS.objects,
      // The test pool keeps the objects' SQLite files under the temporary directory: on tmpfs,
      // as the HTTP bench does (bench/http.mjs, STATE_BASE), so every commit's figure is the
      // code's and not this VM disk's fsync (which made any one-row write call cost ~1 ms).
      { ...process.env, TMPDIR: OBJECT_STATE_DIR },
    );
    if (code !== 0) failures.push(`objects bench exited with ${code}`);
    try {
      const json = JSON.parse(await readFile(report, "utf8"));
      for (const file of json.testResults) {
        for (const test of file.assertionResults) {
          if (test.status !== "passed")
            failures.push(`${test.fullName}: ${test.status} ${test.failureMessages?.[0]?.split("\n")[0] ?? ""}`);
          const bench = test.meta?.bench;
          if (!bench) continue;
          rows.push(...bench.rows);
          details[test.fullName] = bench.details ?? {};
        }
      }
    } catch (err) {
      failures.push(`no vitest report: ${err.message}`);
    }
  }
  if (only === null || only === "http") {
    const out = join(work, "http.json");
    const code = await run(
      "http (wrangler dev)",
      [
        join(ROOT, "bench", "http.mjs"),
        "--json",
        out,
        ...(quick ? ["--quick"] : []),
        ...(httpSection ? ["--only", httpSection] : []),
      ],
      LIMITS.http,
    );
    if (code !== 0) failures.push(`http bench exited with ${code}`);
    try {
      const json = JSON.parse(await readFile(out, "utf8"));
      rows.push(...json.rows);
      details.http = json.details;
    } catch (err) {
      failures.push(`no http result: ${err.message}`);
    }
  }
  if (only === null || only === "results") {
    const out = join(work, "results.json");
    const code = await run(
      "results (wrangler dev)",
      [join(ROOT, "bench", "results-stream.mjs"), "--json", out],
      LIMITS.results,
    );
    if (code !== 0) failures.push(`results bench exited with ${code}`);
    try {
      const json = JSON.parse(await readFile(out, "utf8"));
      rows.push(...json.rows);
      details.results = json.details;
    } catch (err) {
      failures.push(`no results-stream result: ${err.message}`);
    }
  }
} finally {
  await rm(work, { recursive: true, force: true }).catch(() => {});
}

const order = ["cancel", "storm", "throughput", "create", "account", "extract", "http", "results"];
rows.sort((a, b) => order.indexOf(a.section) - order.indexOf(b.section));
const result = {
  date: new Date().toISOString(),
  git: git(),
  machine: {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    node: process.version,
    loadavgBefore: loadBefore,
    loadavgAfter: loadavg(),
    objectStateDir: OBJECT_STATE_DIR,
  },
  durationS: Math.round((Date.now() - started) / 1000),
  partial: onlyArg,
  failures,
  rows,
  details,
};

console.log(
  `\nBench ${result.date} (${result.git?.commit ?? "?"}${result.git?.srcDirty ? ", src modified" : ""}), ${result.durationS} s, load ${loadBefore.map((l) => l.toFixed(1)).join(" ")}`,
);
console.log("Every ratio is value / baseline, both measured in this run (times: >1 is slower; rates: <1 is slower).\n");
console.log(table(rows));
if (failures.length > 0) console.log(`\nProblems:\n${failures.map((f) => `  - ${f}`).join("\n")}`);

await mkdir(RESULTS, { recursive: true });
const stamp = result.date.replace(/[:.]/g, "-");
const body = JSON.stringify(result, null, 2);
await writeFile(join(RESULTS, `${stamp}.json`), body);
if (only === null) {
  await writeFile(join(RESULTS, "latest.json"), body);
  await writeFile(
    join(RESULTS, "latest.md"),
    `Bench of ${result.date} (${result.git?.commit ?? "?"}), ${result.machine.cpus} cores, ${result.durationS} s.\n\n${markdown(rows)}\n`,
  );
}
console.log(`\nWritten: bench/results/${stamp}.json${only === null ? ", latest.json, latest.md" : ""}`);
process.exit(failures.length > 0 ? 1 : 0);
