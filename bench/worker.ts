/**
 * The bench Worker: everything the real Worker exports (its handlers and every Durable
 * Object class, whatever src/index.ts adds later), plus the BareObject baseline, and one
 * plain route, GET /__bench/hello, the HTTP bench's baseline: the same Worker answering
 * with no middleware, no object and no storage (GET /healthz now pings every binding).
 */
import worker from "../src/index";
import type { Env } from "../src/env";

export * from "../src/index";
export { BareObject } from "./bare-object";

/** Not exported: a Worker module may export only handlers and classes. */
const HELLO_PATH = "/__bench/hello";

export default {
  ...worker,
  fetch(request: Request, env: Env, ctx: ExecutionContext) {
    if (request.method === "GET" && new URL(request.url).pathname === HELLO_PATH) return new Response("hello");
    return worker.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<Env>;
