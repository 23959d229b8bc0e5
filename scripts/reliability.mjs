// `npm run reliability`: the reliability suite with more iterations, then the load run, then
// the hostile pages story, then one table of figures.
//
//   node scripts/reliability.mjs [--runs N] [--load-seconds S] [--no-load] [--no-tests] [--no-hostile]
//
// --runs (default 200; npm test uses 25) sets RELIABILITY_RUNS: model sequences, and the
// rounds of races and faults grow with it. The vitest files print `[reliability] {json}`
// lines with their figures; scripts/load.mjs prints `[load] {json}`, scripts/hostile.mjs
// `[hostile] {json}`. The table goes to the console and to test-output/reliability.md.
// Exits non-zero if any test or check failed.
import { spawn } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ROOT } from "./lib/wrangler.mjs";

const args = process.argv.slice(2);
const flag = (name) => args.includes(name);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  const n = i >= 0 ? Number(args[i + 1]) : NaN;
  return Number.isFinite(n) && n > 0 ? n : fallback;
};
const RUNS = option("--runs", 200);
const LOAD_SECONDS = option("--load-seconds", 30);
const OUT = join(ROOT, "test-output");
const VITEST = join(ROOT, "node_modules", "vitest", "vitest.mjs");

/** Runs a node script; keeps its output in a log file and prints the lines `show` picks. Resolves to { code, lines }. */
function run(label, script, scriptArgs, env, show) {
  return new Promise((resolve) => {
    console.log(`\n=== ${label}`);
    const child = spawn(process.execPath, [script, ...scriptArgs], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const lines = [];
    let partial = "";
    const onData = (chunk) => {
      const parts = (partial + chunk).split(/\r?\n/);
      partial = parts.pop() ?? "";
      for (const line of parts) {
        lines.push(line);
        if (show(line)) console.log(line);
      }
    };
    child.stdout.setEncoding("utf8").on("data", onData);
    child.stderr.setEncoding("utf8").on("data", onData);
    child.on("exit", (code, signal) => {
      if (partial) lines.push(partial);
      resolve({ code: code ?? (signal ? 1 : 0), lines });
    });
  });
}

// eslint-disable-next-line no-control-regex
const plain = (line) => line.replace(/\u001b\[[0-9;?]*[ -/]*[@-~]/g, "");

async function tests() {
  const json = join(OUT, "reliability-vitest.json");
  const projects = [
    ["unit", ["test/reliability"]],
    ["queue", ["test/queue/reliability-faults.test.ts"]],
  ];
  const figures = {};
  const counts = { passed: 0, failed: 0, todo: 0, skipped: 0 };
  let code = 0;
  for (const [project, files] of projects) {
    const r = await run(
      `vitest --project ${project} ${files.join(" ")} (RELIABILITY_RUNS=${RUNS})`,
      VITEST,
      // --silent=false: the figures are console lines, which the config keeps quiet for passing tests.
      [
        "run",
        "--project",
        project,
        ...files,
        "--silent=false",
        "--reporter=default",
        "--reporter=json",
        `--outputFile.json=${json}`,
      ],
      { RELIABILITY_RUNS: String(RUNS) },
      (line) =>
        /^\s*(✓|×|↓|FAIL|Test Files|Tests|Duration)|\[reliability\]|Counterexample|AssertionError/.test(
          plain(line).trim(),
        ) && !/"level":/.test(line),
    );
    await writeFile(join(OUT, `reliability-${project}.log`), r.lines.join("\n"));
    code ||= r.code;
    for (const line of r.lines) {
      const m = /\[reliability\] (\{.*\})/.exec(plain(line));
      if (!m) continue;
      for (const [k, v] of Object.entries(JSON.parse(m[1])))
        if (typeof v === "number") figures[k] = (figures[k] ?? 0) + v;
    }
    try {
      const report = JSON.parse(await readFile(json, "utf8"));
      counts.passed += report.numPassedTests;
      counts.failed += report.numFailedTests;
      counts.todo += report.numTodoTests;
      counts.skipped += report.numPendingTests;
    } catch {
      counts.failed += 1;
    }
  }
  return { code, figures, counts };
}

async function load() {
  const r = await run(
    `load: scripts/load.mjs (${LOAD_SECONDS} s)`,
    join(ROOT, "scripts", "load.mjs"),
    [],
    { LOAD_SECONDS: String(LOAD_SECONDS) },
    (line) => !line.startsWith("[load] "),
  );
  await writeFile(join(OUT, "reliability-load.log"), r.lines.join("\n"));
  const line = r.lines.find((l) => l.startsWith("[load] "));
  return { code: r.code, summary: line ? JSON.parse(line.slice(7)) : null };
}

async function hostile() {
  const r = await run(
    "hostile pages story: scripts/hostile.mjs",
    join(ROOT, "scripts", "hostile.mjs"),
    [],
    {},
    (line) => /^\s*FAIL|^worst stall|^hostile/.test(line),
  );
  await writeFile(join(OUT, "reliability-hostile.log"), r.lines.join("\n"));
  const line = r.lines.find((l) => l.startsWith("[hostile] "));
  return { code: r.code, summary: line ? JSON.parse(line.slice(10)) : null };
}

await mkdir(OUT, { recursive: true });
const t = flag("--no-tests") ? null : await tests();
const l = flag("--no-load") ? null : await load();
const h = flag("--no-hostile") ? null : await hostile();

const f = t?.figures ?? {};
const n = (x) => (x === undefined || x === null ? "–" : Number(x).toLocaleString("en-US"));
const rows = [
  ["Model commands run (sequences)", t ? `${n(f.commands ?? 0)} (${n(f.sequences ?? 0)})` : "–"],
  ["Races tried", t ? n(f.races ?? 0) : "–"],
  ["Faults injected", t ? n(f.faults ?? 0) : "–"],
  ["Bad inputs tried", t ? n(f.badInputs ?? 0) : "–"],
  ["5xx seen (bad inputs)", t ? n(f.fiveXx ?? 0) : "–"],
  [
    "Requests under load",
    l?.summary
      ? `${n(l.summary.requests)} in ${l.summary.seconds} s (p50 ${l.summary.p50ms} ms, p99 ${l.summary.p99ms} ms)`
      : "–",
  ],
  ["5xx seen (load)", l?.summary ? n(l.summary.fiveXx) : "–"],
  [
    "Batches under load (not terminal at the end)",
    l?.summary ? `${n(l.summary.batches)} (${n(l.summary.notTerminal)})` : "–",
  ],
  ["Credits drifted", l?.summary ? n(l.summary.drift) : "–"],
  ["Hostile inputs tried", h?.summary ? n(h.summary.hostileInputs) : "–"],
  [
    "Worst stall seen (second account, hostile story)",
    h?.summary?.worstStallMs != null
      ? `${n(h.summary.worstStallMs)} ms over ${n(h.summary.bystanderRequests)} requests (p50 ${h.summary.p50Ms} ms)`
      : "–",
  ],
  ["Tests passed / failed / todo", t ? `${t.counts.passed} / ${t.counts.failed} / ${t.counts.todo}` : "–"],
];
const width = Math.max(...rows.map(([k]) => k.length));
const table = [
  `| ${"Figure".padEnd(width)} | Value |`,
  `| ${"-".repeat(width)} | --- |`,
  ...rows.map(([k, v]) => `| ${k.padEnd(width)} | ${v} |`),
].join("\n");
const when = new Date().toISOString().slice(0, 16).replace("T", " ");
console.log(`\nReliability (RELIABILITY_RUNS=${RUNS}, load ${LOAD_SECONDS} s, ${when} UTC)\n\n${table}\n`);
await writeFile(
  join(OUT, "reliability.md"),
  `Reliability run: RELIABILITY_RUNS=${RUNS}, load ${LOAD_SECONDS} s, ${when} UTC\n\n${table}\n`,
);

const ok = (t === null || t.code === 0) && (l === null || l.code === 0) && (h === null || h.code === 0);
console.log(ok ? "reliability: all checks passed" : "reliability: FAILED (see test-output/reliability-*.log)");
process.exit(ok ? 0 : 1);
