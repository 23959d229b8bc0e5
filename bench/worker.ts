/**
 * The bench Worker: everything the real Worker exports (its handlers and every Durable
 * Object class, whatever src/index.ts adds later), plus the BareObject baseline, and one
 * plain route, GET /__bench/hello, the HTTP bench's baseline: the same Worker answering
 * with no middleware, no object and no storage (GET /healthz now pings every binding).
 *
 * The account object is the real one counting the calls made into it (bench/counting-account.ts);
 * GET /__bench/account-calls/<account id> answers how many since the last time it was asked.
 */
import worker from "../src/index";
import type { Env } from "../src/env";
import { CountingAccountObject } from "./counting-account";
import { readPathStep } from "./read-path";

export * from "../src/index";
export { BareObject } from "./bare-object";
// Shadows the real class of the same name (an explicit export wins over `export *`).
export { CountingAccountObject as AccountObject };

/** Not exported: a Worker module may export only handlers and classes. */
const HELLO_PATH = "/__bench/hello";
const ACCOUNT_CALLS = /^\/__bench\/account-calls\/([0-9a-f-]{36})$/;

export default {
  ...worker,
  async fetch(request: Request, env: Env, ctx: ExecutionContext) {
    const path = new URL(request.url).pathname;
    if (request.method === "GET" && path === HELLO_PATH) return new Response("hello");
    const step = request.method === "GET" ? await readPathStep(request, path, env) : null;
    if (step) return step;
    const calls = request.method === "GET" ? ACCOUNT_CALLS.exec(path) : null;
    if (calls) {
      const stub = env.ACCOUNT.getByName(calls[1]!) as unknown as { benchAccountCalls(): Promise<number> };
      return Response.json({ calls: await stub.benchAccountCalls() });
    }
    return worker.fetch(request, env, ctx);
  },
} satisfies ExportedHandler<Env>;
