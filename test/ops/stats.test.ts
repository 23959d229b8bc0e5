import { createExecutionContext, runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import type { Env } from "../../src/env";
import { createApp } from "../../src/http/app";
import { REGISTRY_NAME } from "../../src/registry/registry-object";
import {
  adminHeaders,
  batchStub,
  callJson,
  drainOutbox,
  getCredits,
  keyHeaders,
  newAccount,
  newBatch,
  runInBatch,
} from "../helpers";
import { expectError } from "../http/support";
import { backdateFinish, captureLogs, expectIsoNow, finishedBatch } from "./support";

const stats = (query = "") => callJson(`/admin/stats${query}`, { headers: adminHeaders });

let logs: ReturnType<typeof captureLogs> | undefined;
afterEach(() => {
  logs?.restore();
  logs = undefined;
});

/** Storage is per test file: these accounts are the whole registry, in this order. */
let a: { accountId: string; apiKey: string };
let b: { accountId: string; apiKey: string };

describe("GET /admin/stats", () => {
  it("sums batches by state, items in flight and queued, credits and dead letters across every account", async () => {
    a = await newAccount(100);
    b = await newAccount(50);
    // A: one batch running (1 running, 2 pending of which 1 sent to the queue), one completed.
    const running = await newBatch(a.apiKey, 3);
    const lease = await batchStub(running.batchId).startItem(running.itemIds[0]!);
    expect(lease.action).toBe("run");
    await runInBatch(running.batchId, (_o, s) => s.storage.sql.exec("UPDATE batch SET queued = 1"));
    await drainOutbox(running.batchId);
    await finishedBatch(a.apiKey, 1);
    // B: one cancelled, one removed by retention.
    const cancelled = await newBatch(b.apiKey, 2);
    await callJson(`/api/batch/scrape/${cancelled.batchId}`, { method: "DELETE", headers: keyHeaders(b.apiKey) });
    await drainOutbox(cancelled.batchId);
    const old = await finishedBatch(b.apiKey, 1);
    await backdateFinish(old.batchId, 31);
    await runDurableObjectAlarm(batchStub(old.batchId));
    // Two messages the executor gave up on.
    for (const id of ["m1", "m2"]) await env.RESULTS.put(`dead-letters/2026-11-23/${id}.json`, "{}");

    const r = await stats();
    expect(r.status).toBe(200);
    const [ca, cb] = [await getCredits(a.apiKey), await getCredits(b.apiKey)];
    expect(r.body).toEqual({
      generatedAt: expect.any(String),
      accounts: { counted: 2, total: 2, unreachable: 0, closed: 0, partial: false, nextCursor: null },
      batches: { pending: 0, running: 1, completed: 1, failed: 0, cancelled: 1, expired: 1 },
      items: { pending: 2, running: 1, queued: 1 },
      credits: {
        granted: 150,
        balance: ca.balance + cb.balance,
        reserved: ca.reserved + cb.reserved,
        used: ca.used + cb.used,
        refunded: ca.refunded + cb.refunded,
      },
      deadLetters: { count: 2, more: false },
    });
    expect(r.body.credits.reserved).toBe(6); // the running batch's three items
    expectIsoNow(r.body.generatedAt);
  });

  it("answers for one account with ?accountId=", async () => {
    const r = await stats(`?accountId=${b.accountId}`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      accounts: { counted: 1, total: 1, unreachable: 0, nextCursor: null },
      batches: { running: 0, completed: 0, cancelled: 1, expired: 1 },
      items: { pending: 0, running: 0, queued: 0 },
      credits: await getCredits(b.apiKey),
    });
  });

  it("pages through the registry with limit and cursor", async () => {
    const first = await stats("?limit=1");
    expect(first.body.accounts).toMatchObject({ counted: 1, total: 2, nextCursor: expect.any(String) });
    expect(first.body.credits.granted).toBe(100);
    const second = await stats(`?limit=1&cursor=${first.body.accounts.nextCursor}`);
    expect(second.body.accounts).toMatchObject({ counted: 1, total: 2, nextCursor: null });
    expect(second.body.credits.granted).toBe(50);
  });

  it("counts an account that does not answer as unreachable, and still answers", async () => {
    logs = captureLogs();
    const broken = {
      getByName: () => ({ stats: () => Promise.reject(new Error("injected: overloaded")) }),
    } as unknown as Env["ACCOUNT"];
    const res = await createApp().fetch(
      new Request("https://api.test/admin/stats", { headers: adminHeaders }),
      { ...env, ACCOUNT: broken },
      createExecutionContext(),
    );
    expect(res.status).toBe(200);
    const body = await res.json<{ accounts: { counted: number; unreachable: number }; credits: { granted: number } }>();
    expect(body.accounts).toMatchObject({ counted: 0, unreachable: 2 });
    expect(body.credits.granted).toBe(0);
  });

  it("refuses without the admin token, and answers 404 for an unknown or malformed account", async () => {
    expectError(await callJson("/admin/stats"), 401, "UNAUTHORIZED");
    expectError(
      await callJson("/admin/stats", { headers: { authorization: `Bearer ${a.apiKey}` } }),
      401,
      "UNAUTHORIZED",
    );
    expectError(await stats(`?accountId=${crypto.randomUUID()}`), 404, "NOT_FOUND");
    expectError(await stats("?accountId=nope"), 404, "NOT_FOUND");
    expectError(await stats("?limit=1001"), 400, "VALIDATION_ERROR");
    expectError(await stats("?cursor=abc"), 400, "VALIDATION_ERROR");
  });

  it("registering is idempotent: opening accounts adds each once", async () => {
    const c = await newAccount(7);
    await env.REGISTRY.getByName(REGISTRY_NAME).register(c.accountId);
    await env.REGISTRY.getByName(REGISTRY_NAME).register(a.accountId);
    const r = await stats();
    expect(r.body.accounts).toMatchObject({ counted: 3, total: 3 });
    expect(r.body.credits.granted).toBe(157);
    expect((await stats(`?accountId=${c.accountId}`)).body.credits.granted).toBe(7);
  });

  it("counts closed accounts apart; their books stay in the sums", async () => {
    const before = await stats();
    expect(before.body.accounts.closed).toBe(0);
    const closing = await callJson(`/admin/accounts/${a.accountId}`, { method: "DELETE", headers: adminHeaders });
    expect(closing.status).toBe(200);
    const after = await stats();
    expect(after.body.accounts).toMatchObject({ counted: before.body.accounts.counted, closed: 1 });
    expect(after.body.credits.granted).toBe(before.body.credits.granted);
    expect((await stats(`?accountId=${a.accountId}`)).body.accounts).toMatchObject({ counted: 1, closed: 1 });
    expect((await stats(`?accountId=${b.accountId}`)).body.accounts).toMatchObject({ counted: 1, closed: 0 });
  });
});
