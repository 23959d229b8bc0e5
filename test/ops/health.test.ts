import { createExecutionContext, runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import { version } from "../../package.json";
import type { Env } from "../../src/env";
import { createApp } from "../../src/http/app";
import { HEALTH_OBJECT } from "../../src/http/health";
import { captureLogs, tablesOf } from "./support";

const ALL_OK = { batch: "ok", account: "ok", registry: "ok", results: "ok", apiKeys: "ok", queue: "ok" };

/** The app, served with some bindings replaced (exports.default always has the real ones). */
async function healthWith(overrides: Partial<Env>) {
  const res = await createApp().fetch(
    new Request("https://api.test/healthz"),
    { ...env, ...overrides },
    createExecutionContext(),
  );
  return { status: res.status, body: await res.json<Record<string, unknown>>(), res };
}

function failingBucket(): R2Bucket {
  return new Proxy(env.RESULTS, {
    get: (target, prop) => {
      if (prop === "head") return () => Promise.reject(new Error("injected: bucket gone, secret-detail-42"));
      const value: unknown = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

let logs: ReturnType<typeof captureLogs> | undefined;
afterEach(() => {
  logs?.restore();
  logs = undefined;
});

describe("GET /healthz", () => {
  it("answers 200 with the version and every binding ok, without auth", async () => {
    const res = await exports.default.fetch("https://api.test/healthz");
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok", version, checks: ALL_OK });
    expect(version).toMatch(/^\d+\.\d+\.\d+/);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("x-request-id")).toBeTruthy();
  });

  it("tells nothing else: no vars, no secrets", async () => {
    const text = await (await exports.default.fetch("https://api.test/healthz")).text();
    for (const secret of [env.ADMIN_TOKEN!, env.API_KEY_MAC_SECRET!]) expect(text).not.toContain(secret);
    for (const value of [env.RETENTION_DAYS, env.MAX_BODY_BYTES, env.ACCOUNT_MAX_CONCURRENCY])
      expect(text).not.toContain(`"${value}"`);
  });

  it("stores nothing: the pinged objects stay empty, R2 gets no key", async () => {
    for (let i = 0; i < 3; i++) expect((await exports.default.fetch("https://api.test/healthz")).status).toBe(200);
    for (const ns of [env.BATCH, env.ACCOUNT, env.REGISTRY] as DurableObjectNamespace[]) {
      expect(await runInDurableObject(ns.getByName(HEALTH_OBJECT), (_o, state) => tablesOf(state))).toEqual([]);
    }
    expect((await env.RESULTS.list({ prefix: HEALTH_OBJECT })).objects).toEqual([]);
  });

  it("answers 503 naming R2 when the bucket fails; the cause is logged, not returned", async () => {
    logs = captureLogs();
    const r = await healthWith({ RESULTS: failingBucket() });
    expect(r.status).toBe(503);
    expect(r.body).toEqual({ status: "failing", version, checks: { ...ALL_OK, results: "failed" } });
    expect(JSON.stringify(r.body)).not.toContain("secret-detail-42");
    const line = logs.json().find((l) => l.msg === "health check failed");
    expect(line).toMatchObject({ level: "error", check: "results", requestId: r.res.headers.get("x-request-id") });
    expect(String(line?.error)).toContain("secret-detail-42");
  });

  it("answers 503 naming the queue when its binding is missing", async () => {
    logs = captureLogs();
    const r = await healthWith({ SCRAPE_QUEUE: undefined as unknown as Env["SCRAPE_QUEUE"] });
    expect(r.status).toBe(503);
    expect(r.body).toMatchObject({ status: "failing", checks: { ...ALL_OK, queue: "failed" } });
  });

  it.each([
    ["missing", undefined],
    ["shorter than 32 characters", "x".repeat(31)],
  ])(
    "answers 503 naming apiKeys when API_KEY_MAC_SECRET is %s (no key could be checked or issued)",
    async (_label, secret) => {
      logs = captureLogs();
      const r = await healthWith({ API_KEY_MAC_SECRET: secret });
      expect(r.status).toBe(503);
      expect(r.body).toEqual({ status: "failing", version, checks: { ...ALL_OK, apiKeys: "failed" } });
      expect(logs.json().find((l) => l.msg === "health check failed")).toMatchObject({
        check: "apiKeys",
        error: expect.stringContaining("API_KEY_MAC_SECRET"),
      });
    },
  );

  it("answers 503 naming the object namespaces that do not answer", async () => {
    logs = captureLogs();
    const broken = { getByName: () => ({ ping: () => Promise.reject(new Error("injected: object unreachable")) }) };
    const r = await healthWith({
      BATCH: broken as unknown as Env["BATCH"],
      ACCOUNT: broken as unknown as Env["ACCOUNT"],
    });
    expect(r.status).toBe(503);
    expect(r.body).toMatchObject({ checks: { ...ALL_OK, batch: "failed", account: "failed" } });
    expect(
      logs
        .json()
        .filter((l) => l.msg === "health check failed")
        .map((l) => l.check)
        .sort(),
    ).toEqual(["account", "batch"]);
  });
});
