/**
 * The steps of a status read, one bench route each, so the HTTP bench can show where a
 * read's time goes beside hello (bench/http.mjs, section `read-path`). Each route does
 * hello's work plus one step of the real path, with the real code:
 *
 * - /__bench/step/log      the request's log line (src/lib/log.ts, same shape)
 * - /__bench/step/key      the key's MAC and hash, as the Worker checks them (src/http/verified-keys.ts)
 * - /__bench/step/limit    one READ_LIMITER.limit() (the per-key read limit)
 * - /__bench/step/hono     the real app, a route that touches nothing (404 of an unknown path)
 * - /__bench/step/ping/:id one call of the batch object that does nothing (`ping`): the floor of any object call
 * - /__bench/step/rpc/:id  the batch object's read (getAs) alone, answered as JSON
 *
 * Bench only: never in src/, never deployed.
 */
import { verifyKey } from "../src/http/verified-keys";
import type { Env } from "../src/env";
import { log } from "../src/lib/log";

const STEP = /^\/__bench\/step\/(log|key|limit|(?:rpc|ping)\/([0-9a-f-]{36}))$/;

export async function readPathStep(request: Request, path: string, env: Env): Promise<Response | null> {
  const m = STEP.exec(path);
  if (!m) return null;
  const key = request.headers.get("x-api-key") ?? "";
  if (m[1] === "log") {
    log("info", "request", {
      requestId: crypto.randomUUID(),
      method: "GET",
      route: "/__bench/step/log",
      status: 200,
      durationMs: 0,
      accountId: null,
    });
    return new Response("hello");
  }
  if (m[1] === "key") {
    const ok = (await verifyKey(key, env.API_KEY_MAC_SECRET!)) !== null;
    return new Response(ok ? "hello" : "bad key", { status: ok ? 200 : 403 });
  }
  if (m[1] === "limit") {
    const { success } = await env.READ_LIMITER!.limit({ key: "bench" });
    return new Response(success ? "hello" : "limited", { status: success ? 200 : 429 });
  }
  if (m[1]!.startsWith("ping/")) return new Response(await env.BATCH.getByName(m[2]!).ping());
  const claim = await verifyKey(key, env.API_KEY_MAC_SECRET!);
  if (!claim) return new Response("bad key", { status: 403 });
  const limit = Number(new URL(request.url).searchParams.get("limit") ?? 50);
  const found = await env.BATCH.getByName(m[2]!).getAs(claim, -1, limit);
  return Response.json(found, { status: found.ok ? 200 : 404 });
}
