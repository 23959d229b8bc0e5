/**
 * GET /healthz, no auth: the version and whether each binding answers (and whether the
 * API_KEY_MAC_SECRET that API keys need is set). 200 when all do, 503 naming the ones that
 * did not. It says nothing else (no vars, no secrets, no error texts: those go to the log),
 * and it stores nothing: the object checks are RPC pings on fixed-name objects that never
 * write, R2 is a `head` of a key that does not exist.
 */
import { createRoute, OpenAPIHono, z } from "@hono/zod-openapi";
import { version } from "../../package.json";
import { MIN_MAC_SECRET_LENGTH, usableMacSecret } from "../account/keys";
import type { AppEnv, Env } from "../env";
import { log } from "../lib/log";

/** Fixed object name for the pings; never used for a real batch or account (those are UUIDs). */
export const HEALTH_OBJECT = "healthz";
/** A check that does not answer within this is failed, so a probe never hangs. */
const CHECK_TIMEOUT_MS = 3_000;

const CHECKS = {
  batch: (env: Env) => env.BATCH.getByName(HEALTH_OBJECT).ping(),
  account: (env: Env) => env.ACCOUNT.getByName(HEALTH_OBJECT).ping(),
  registry: (env: Env) => env.REGISTRY.getByName(HEALTH_OBJECT).ping(),
  results: (env: Env) => env.RESULTS.head(`${HEALTH_OBJECT}/probe`),
  // Without it no API key can be checked or issued (src/http/auth.ts): the service is down for clients.
  apiKeys: async (env: Env) => {
    if (usableMacSecret(env.API_KEY_MAC_SECRET) === null)
      throw new Error(`API_KEY_MAC_SECRET missing or shorter than ${MIN_MAC_SECRET_LENGTH} characters`);
  },
  // A producer binding cannot be probed without sending; present and callable is what we can say.
  queue: async (env: Env) => {
    if (typeof env.SCRAPE_QUEUE?.send !== "function") throw new Error("SCRAPE_QUEUE binding missing");
  },
} satisfies Record<string, (env: Env) => Promise<unknown>>;

type CheckName = keyof typeof CHECKS;
export type Health = { status: "ok" | "failing"; version: string; checks: Record<CheckName, "ok" | "failed"> };

/** Runs every check at once; a failure is logged with its cause and reported by name only. */
export async function checkHealth(env: Env, requestId?: string): Promise<Health> {
  const names = Object.keys(CHECKS) as CheckName[];
  const results = await Promise.all(
    names.map((name) => withTimeout(Promise.resolve().then((): Promise<unknown> => CHECKS[name](env)))),
  );
  const checks = {} as Record<CheckName, "ok" | "failed">;
  names.forEach((name, i) => {
    const error = results[i];
    checks[name] = error === null ? "ok" : "failed";
    if (error !== null) log("error", "health check failed", { requestId, check: name, error: String(error) });
  });
  const ok = Object.values(checks).every((c) => c === "ok");
  return { status: ok ? "ok" : "failing", version, checks };
}

/** null when the check passed, else what went wrong. */
async function withTimeout(check: Promise<unknown>): Promise<unknown> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<Error>((resolve) => {
    timer = setTimeout(() => resolve(new Error(`no answer in ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
  });
  try {
    return await Promise.race([
      check.then(
        () => null,
        (err: unknown) => err ?? new Error("failed"),
      ),
      timeout,
    ]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

const Check = z.enum(["ok", "failed"]);
const HealthSchema = z
  .object({
    status: z.enum(["ok", "failing"]),
    version: z.string(),
    checks: z.object({ batch: Check, account: Check, registry: Check, results: Check, apiKeys: Check, queue: Check }),
  })
  .openapi("Health", {
    example: {
      status: "ok",
      version: "0.1.0",
      checks: { batch: "ok", account: "ok", registry: "ok", results: "ok", apiKeys: "ok", queue: "ok" },
    },
  });

const route = createRoute({
  method: "get",
  path: "/healthz",
  tags: ["Operations"],
  summary: "Health: version, and whether every binding answers",
  responses: {
    200: { description: "Every binding answers", content: { "application/json": { schema: HealthSchema } } },
    503: {
      description: "Some binding did not answer (named in checks)",
      content: { "application/json": { schema: HealthSchema } },
    },
  },
});

export const health = new OpenAPIHono<AppEnv>().openapi(route, async (c) => {
  const report = await checkHealth(c.env, c.get("requestId"));
  c.header("cache-control", "no-store");
  return report.status === "ok" ? c.json(report, 200) : c.json(report, 503);
});
