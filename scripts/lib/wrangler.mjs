// Shared by the story frame (scripts/lib/story-run.mjs), scripts/load.mjs and bench/http.mjs:
// run `wrangler dev` on 127.0.0.1 in its own process group, and stop that group (SIGTERM,
// then SIGKILL) so no workerd is left behind.
// Node built-ins only.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const WRANGLER_BIN = join(ROOT, "node_modules", "wrangler", "bin", "wrangler.js");
/** Wrangler needs Node >= 22.12: use the project's own Node (the `node` package), as npm scripts do. */
const LOCAL_NODE = join(ROOT, "node_modules", "node", "bin", "node");
const NODE_FOR_WRANGLER = existsSync(LOCAL_NODE) ? LOCAL_NODE : process.execPath;

const LOG_LINES = 2000;
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;?]*[ -/]*[@-~]/g;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolvePort(port));
    });
  });
}

export async function freePorts(n) {
  const ports = new Set();
  for (let i = 0; i < 20 && ports.size < n; i++) ports.add(await freePort());
  if (ports.size < n) throw new Error("could not find free ports");
  return [...ports];
}

/**
 * Bundles the Worker as it is now into `dir` and writes a copy of wrangler.toml there that
 * runs the bundle. `wrangler dev` reloads on every change to the files it watches; a run
 * over a snapshot is not restarted (losing in-flight queue messages) when someone edits
 * src/ or wrangler.toml meanwhile. Resolves to the copied config's path.
 */
export async function snapshotWorker(dir) {
  const code = await new Promise((resolveCode) => {
    const child = spawn(
      NODE_FOR_WRANGLER,
      [WRANGLER_BIN, "deploy", "--dry-run", "--env=", "--outdir", join(dir, "bundle")],
      {
        cwd: ROOT,
        stdio: ["ignore", "ignore", "inherit"],
        env: {
          ...process.env,
          WRANGLER_SEND_METRICS: "false",
          WRANGLER_SEND_ERROR_REPORTS: "false",
          DO_NOT_TRACK: "1",
        },
      },
    );
    child.on("exit", (c) => resolveCode(c ?? 1));
  });
  if (code !== 0) throw new Error(`could not bundle the Worker (wrangler deploy --dry-run exited ${code})`);
  const config = (await readFile(join(ROOT, "wrangler.toml"), "utf8")).replace(
    /^main\s*=.*$/m,
    'main = "bundle/index.js"\nno_bundle = true',
  );
  const path = join(dir, "wrangler.toml");
  await writeFile(path, config);
  return path;
}

/**
 * Starts `wrangler dev` detached (its own process group). `vars` become `--var NAME:value`;
 * `config` runs another config than the project's (e.g. a snapshot's); `script` is an entry
 * point (relative to ROOT) run instead of the config's `main`; `logLevel` is wrangler's
 * `--log-level` (default: wrangler's own).
 * Returns { child, pgid, exited, exit, log, buildError, buildFailed }: `log` keeps the last
 * lines of its output, `buildFailed` resolves if wrangler reports "Build failed".
 */
export function startWrangler({ port, inspectorPort, persistTo, logDir, vars = {}, config, script, logLevel }) {
  const args = [
    WRANGLER_BIN,
    "dev",
    ...(script ? [script] : []),
    ...(config ? ["--config", config] : []),
    "--port",
    String(port),
    "--ip",
    "127.0.0.1",
    "--inspector-port",
    String(inspectorPort),
    "--persist-to",
    persistTo,
    "--show-interactive-dev-session=false",
    ...(logLevel ? ["--log-level", logLevel] : []),
    ...Object.entries(vars).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
  ];
  const child = spawn(NODE_FOR_WRANGLER, args, {
    cwd: ROOT,
    detached: true, // its own process group: we kill wrangler and its workerd children together
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      // Keep wrangler off the network: no Request.cf download, no telemetry, no error reports.
      CLOUDFLARE_CF_FETCH_ENABLED: "false",
      WRANGLER_SEND_METRICS: "false",
      WRANGLER_SEND_ERROR_REPORTS: "false",
      DO_NOT_TRACK: "1",
      WRANGLER_LOG_PATH: logDir,
      NO_COLOR: "1",
      FORCE_COLOR: "0",
    },
  });
  const log = [];
  let buildFailedResolve;
  const buildFailed = new Promise((r) => (buildFailedResolve = r));
  const state = { child, pgid: child.pid, exited: null, exit: null, log, buildError: null, buildFailed };
  const collect = (stream) => {
    let partial = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk) => {
      const lines = (partial + chunk).split(/\r?\n/);
      partial = lines.pop() ?? "";
      for (const raw of lines) {
        const line = raw.replace(ANSI, "");
        if (state.buildError === null && /Build failed/.test(line)) {
          state.buildError = line.trim();
          buildFailedResolve();
        }
        log.push(line);
        if (log.length > LOG_LINES) log.shift();
      }
    });
    stream.on("end", () => partial && log.push(partial.replace(ANSI, "")));
  };
  collect(child.stdout);
  collect(child.stderr);
  state.exited = new Promise((r) => child.once("exit", (code, signal) => r({ code, signal })));
  child.once("error", (err) => log.push(`spawn error: ${err.message}`));
  return state;
}

/** True while any process of the group is alive. */
export function groupAlive(pgid) {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return err.code === "EPERM";
  }
}

export function signalGroup(pgid, signal) {
  try {
    process.kill(-pgid, signal);
  } catch {
    /* already gone */
  }
}

export async function waitGroupGone(pgid, ms) {
  const deadline = Date.now() + ms;
  while (groupAlive(pgid) && Date.now() < deadline) await sleep(50);
  return !groupAlive(pgid);
}

/**
 * SIGTERM to the group, SIGKILL after `graceMs`. Resolves to true once the group is empty.
 * `onKill` is told when SIGTERM was not enough.
 */
export async function stopGroup(pgid, graceMs, onKill = () => {}) {
  signalGroup(pgid, "SIGTERM");
  if (await waitGroupGone(pgid, graceMs)) return true;
  onKill();
  signalGroup(pgid, "SIGKILL");
  return waitGroupGone(pgid, 2_000);
}
