import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createApp } from "../../src/http/app";
import { requestLogRate, SLOW_POLL_MS } from "../../src/http/observability";
import {
  ADMIN_TOKEN,
  adminHeaders,
  batchStub,
  callJson,
  createBatch,
  drainOutbox,
  keyHeaders,
  newAccount,
  newBatch,
} from "../helpers";
import { secretOf } from "../http/support";
import { captureLogs } from "./support";

let logs: ReturnType<typeof captureLogs>;
beforeEach(() => {
  logs = captureLogs();
});
afterEach(() => logs.restore());

const requestLines = () => logs.json().filter((l) => l.msg === "request");
const transitions = (batchId: string) =>
  logs.json().filter((l) => l.msg === "batch transition" && l.batchId === batchId);

/** A request through the app with POLL_LOG_SAMPLE set to `sample`. */
async function withPollSample(sample: string, path: string, apiKey: string): Promise<Response> {
  const res = await createApp().fetch(
    new Request(`https://api.test${path}`, { headers: keyHeaders(apiKey) }),
    { ...env, POLL_LOG_SAMPLE: sample },
    createExecutionContext(),
  );
  await res.arrayBuffer();
  return res;
}

describe("one structured log line per request", () => {
  it("has exactly: level, msg, requestId, method, route pattern, status, durationMs, accountId", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 1);
    logs.lines.length = 0;
    // POLL_LOG_SAMPLE 1: every poll is logged, so this one is.
    const res = await withPollSample("1", `/api/batch/scrape/${batchId}?limit=5`, apiKey);
    const r = { status: res.status, res };
    expect(r.status).toBe(200);
    const lines = requestLines();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toEqual({
      level: "info",
      msg: "request",
      requestId: r.res.headers.get("x-request-id"),
      method: "GET",
      route: "/api/batch/scrape/:batchId",
      status: 200,
      durationMs: expect.any(Number),
      accountId,
    });
    expect(lines[0]!.durationMs as number).toBeGreaterThanOrEqual(0);
  });

  it("samples polls (successful reads of one batch); errors and every other request are always logged", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 1);
    await withPollSample("1", `/api/batch/scrape/${batchId}`, apiKey); // the key's copy is lent: warm
    logs.lines.length = 0;
    const never = "1000000000"; // one in a billion: none of these 20 polls is logged
    for (let i = 0; i < 20; i++) {
      expect((await withPollSample(never, `/api/batch/scrape/${batchId}`, apiKey)).status).toBe(200);
    }
    expect(requestLines()).toEqual([]);
    // An error of the same route, and a read that is not a poll (the list, through the account), are logged.
    const missing = "00000000-0000-4000-8000-000000000000";
    expect((await withPollSample(never, `/api/batch/scrape/${missing}`, apiKey)).status).toBe(404);
    expect((await withPollSample(never, "/api/batch/scrape?page=1&limit=5", apiKey)).status).toBe(200);
    expect(requestLines()).toMatchObject([
      { route: "/api/batch/scrape/:batchId", status: 404, code: "NOT_FOUND" },
      { route: "/api/batch/scrape", status: 200 },
    ]);
    // One in two: some logged, marked with their rate, and some not.
    logs.lines.length = 0;
    for (let i = 0; i < 60; i++) await withPollSample("2", `/api/batch/scrape/${batchId}`, apiKey);
    const sampled = requestLines();
    expect(sampled.length).toBeGreaterThan(5);
    expect(sampled.length).toBeLessThan(55);
    for (const line of sampled) expect(line).toMatchObject({ status: 200, sampled: 2 });
  });

  it("requestLogRate: polls one in N; errors, live views, slow polls and other requests always", () => {
    const poll = { poll: true, status: 200, durationMs: 3 };
    expect(requestLogRate(poll, 100, () => 0.001)).toBe(100); // 0.001 * 100 < 1: this one is logged
    expect(requestLogRate(poll, 100, () => 0.5)).toBeNull();
    expect(requestLogRate(poll, 1, () => 0.5)).toBe(1);
    expect(requestLogRate({ ...poll, status: 404 }, 100, () => 0.5)).toBe(1);
    expect(requestLogRate({ ...poll, status: 101 }, 100, () => 0.5)).toBe(1);
    expect(requestLogRate({ ...poll, durationMs: SLOW_POLL_MS }, 100, () => 0.5)).toBe(1);
    expect(requestLogRate({ ...poll, poll: false }, 100, () => 0.5)).toBe(1);
  });

  it("adds the error code to an error's line; an unknown route has no pattern; admin routes have no account", async () => {
    const { apiKey } = await newAccount(1);
    logs.lines.length = 0;
    await createBatch(apiKey, { urls: ["https://example.com/a", "https://example.com/b"] });
    await callJson("/nowhere");
    await callJson("/admin/accounts", { method: "POST", headers: adminHeaders, body: "{}" });
    const [create, nowhere, admin] = requestLines();
    expect(create).toMatchObject({
      method: "POST",
      route: "/api/batch/scrape",
      status: 403,
      code: "INSUFFICIENT_CREDITS",
    });
    expect(nowhere).toMatchObject({ method: "GET", route: null, status: 404, code: "NOT_FOUND", accountId: null });
    expect(admin).toMatchObject({ method: "POST", route: "/admin/accounts", status: 201, accountId: null });
    expect(admin).not.toHaveProperty("code");
  });

  it("never holds an API key, an Authorization header, a query string or a target URL", async () => {
    const { apiKey, accountId } = await newAccount(100);
    logs.lines.length = 0;
    const target = "https://example.com/private?token=url-secret-991";
    const created = await createBatch(apiKey, { urls: [target] });
    const batchId: string = created.body.batchId;
    await callJson(`/api/batch/scrape?page=1&limit=5&api_key=${apiKey}&q=query-secret-77`, {
      headers: keyHeaders(apiKey),
    });
    await callJson(`/api/credits?api_key=${apiKey}`); // a key in the query string, refused
    await callJson(`/admin/accounts/${accountId}?x=admin-query-secret`, { headers: adminHeaders });
    await callJson("/admin/accounts", { headers: { authorization: "Bearer wrong-token-value-55" } });
    await callJson(`/api/batch/scrape/${batchId}`, { headers: { "x-api-key": `${apiKey}tampered` } });
    await withPollSample("1", `/api/batch/scrape/${batchId}`, apiKey); // a poll, logged (sample 1)
    // The batch runs and finishes: its object logs its transitions.
    const item = (await callJson(`/api/batch/scrape/${batchId}`, { headers: keyHeaders(apiKey) })).body.items[0];
    const lease = await batchStub(batchId).startItem(item.uuid);
    if (lease.action !== "run") throw new Error("not started");
    await batchStub(batchId).completeItem(item.uuid, lease.attempt, { title: "t" });
    await drainOutbox(batchId);

    expect(requestLines().length).toBeGreaterThanOrEqual(7);
    expect(transitions(batchId).length).toBeGreaterThanOrEqual(2);
    const all = logs.lines.join("\n");
    for (const secret of [
      apiKey,
      secretOf(apiKey),
      ADMIN_TOKEN,
      env.ADMIN_TOKEN!,
      "Bearer",
      "wrong-token-value-55",
      "query-secret-77",
      "admin-query-secret",
      "url-secret-991",
      "example.com/private",
      "api_key",
    ]) {
      expect(all).not.toContain(secret);
    }
  });
});

describe("one structured log line per batch transition", () => {
  it("logs from, to and the counts when the status changes, and only then", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 2);
    const stub = batchStub(batchId);
    const a = await stub.startItem(itemIds[0]!);
    const b = await stub.startItem(itemIds[1]!);
    if (a.action !== "run" || b.action !== "run") throw new Error("not started");
    await stub.completeItem(itemIds[0]!, a.attempt, {});
    await stub.failItem(itemIds[1]!, b.attempt, { code: "HTTP_404", message: "Not Found" });
    const lines = transitions(batchId);
    expect(lines).toEqual([
      {
        level: "info",
        msg: "batch transition",
        batchId,
        accountId,
        from: "pending",
        to: "running",
        counts: { total: 2, pending: 1, running: 1, completed: 0, failed: 0, cancelled: 0, queued: 0 },
      },
      {
        level: "info",
        msg: "batch transition",
        batchId,
        accountId,
        from: "running",
        to: "completed",
        counts: { total: 2, pending: 0, running: 0, completed: 1, failed: 1, cancelled: 0, queued: 0 },
      },
    ]);
  });

  it("logs a cancel", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 3);
    await callJson(`/api/batch/scrape/${batchId}`, { method: "DELETE", headers: keyHeaders(apiKey) });
    expect(transitions(batchId)).toMatchObject([
      { from: "pending", to: "cancelled", counts: { cancelled: 3, pending: 0 } },
    ]);
  });
});
