// A tiny scraping target for local end-to-end runs: HTML pages at /page/<n>, each
// answered after `delayMs`, with a hit count per path; `routes` adds handlers for other paths
// (scripts/lib/hostile-pages.mjs). Listens on 127.0.0.1 only.
//
//   import { startTargetServer } from "./target-server.mjs";
//   const target = await startTargetServer({ delayMs: 4000 });   // target.url, target.hits
//   await target.close();
//
// Or by hand: `node scripts/target-server.mjs [port] [delayMs]`, e.g. `node scripts/target-server.mjs 3000`
// (port 0 or none: a free one; delay defaults to 0 ms).
import { createServer } from "node:http";
import { pathToFileURL } from "node:url";

const PAGE = /^\/page\/(\d{1,9})$/;

export function pageHtml(n) {
  return (
    `<html lang="en"><head><title>Page ${n}</title><meta name="description" content="desc ${n}"></head>` +
    `<body><h1>Page ${n}</h1><p>Text <a href="/page/${n + 1}">next</a></p></body></html>`
  );
}

/**
 * @param {{ delayMs?: number, port?: number, routes?: Map<string, (req: import("node:http").IncomingMessage, res: import("node:http").ServerResponse) => void> }} [options]
 * @returns {Promise<{ port: number, url: string, hits: Map<string, number>, close(): Promise<void> }>}
 */
export async function startTargetServer({ delayMs = 0, port = 0, routes = new Map() } = {}) {
  const hits = new Map();
  const timers = new Set();

  const server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://127.0.0.1").pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    const match = PAGE.exec(path);
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { Allow: "GET, HEAD", "Content-Type": "text/plain" }).end("method not allowed\n");
      return;
    }
    const route = routes.get(path);
    if (route) {
      route(req, res);
      return;
    }
    if (!match) {
      res.writeHead(404, { "Content-Type": "text/plain" }).end("not found\n");
      return;
    }
    const body = pageHtml(Number(match[1]));
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (res.destroyed) return;
      res.writeHead(200, { "Content-Type": "text/html; charset=utf-8", "Content-Length": Buffer.byteLength(body) });
      res.end(req.method === "HEAD" ? undefined : body);
    }, delayMs);
    timers.add(timer);
    res.on("close", () => {
      clearTimeout(timer);
      timers.delete(timer);
    });
  });

  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const actualPort = /** @type {import("node:net").AddressInfo} */ (server.address()).port;

  let closing;
  return {
    port: actualPort,
    url: `http://127.0.0.1:${actualPort}`,
    hits,
    close() {
      closing ??= new Promise((resolve) => {
        for (const t of timers) clearTimeout(t);
        timers.clear();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

// Run directly: a server for manual demos, stopped with Ctrl-C.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const port = Number(process.argv[2] ?? 0);
  const delayMs = Number(process.argv[3] ?? 0);
  if (!Number.isFinite(delayMs) || delayMs < 0 || !Number.isInteger(port) || port < 0 || port > 65535) {
    console.error("usage: node scripts/target-server.mjs [port] [delayMs]");
    process.exit(2);
  }
  const target = await startTargetServer({ delayMs, port });
  console.log(`target server on ${target.url}/page/0 (delay ${delayMs} ms); Ctrl-C to stop`);
  const stop = async () => {
    await target.close();
    console.log("hits:", Object.fromEntries(target.hits));
    process.exit(0);
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
