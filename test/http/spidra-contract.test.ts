/**
 * Spidra's documented contract, pinned against the Worker in workerd: each call sent as
 * Spidra's Node SDK (v0.3.0) sends it (x-api-key; JSON body on POST, retry with `{}`), each
 * answer checked against the shapes of test/http/spidra/documented.ts, which are written from
 * Spidra's API reference and SDK types, not from our output. Where the SDK turns a status into
 * an error class (403 → SpidraInsufficientCreditsError), the status is pinned too.
 */
import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { batchStub, drainOutbox, newAccount, urls } from "../helpers";
import {
  BatchStatus,
  Cancelled,
  ErrorBody,
  Item,
  List,
  Queued,
  Retried,
  sdkErrorClass,
  UsageStats,
} from "./spidra/documented";

/** The SDK's base URL pointed at this service's /api. */
const BASE = "https://api.test/api";

type Sent = { status: number; body: any; headers: Headers };

/** One call as the SDK's HttpClient makes it (src/lib/http.ts): the same headers, the same body rules. */
async function sdk(apiKey: string, method: "GET" | "POST" | "DELETE", path: string, body?: unknown): Promise<Sent> {
  const headers: Record<string, string> = { "x-api-key": apiKey };
  if (method === "POST") headers["Content-Type"] = "application/json";
  const res = await exports.default.fetch(
    new Request(`${BASE}${path}`, { method, headers, body: method === "POST" ? JSON.stringify(body) : undefined }),
  );
  return { status: res.status, body: await res.json(), headers: res.headers };
}

function parsed<T>(schema: { parse: (v: unknown) => T }, sent: Sent): T {
  return schema.parse(sent.body);
}

async function submit(apiKey: string, body: Record<string, unknown>) {
  const sent = await sdk(apiKey, "POST", "/batch/scrape", body);
  expect(sent.status).toBe(202);
  return { ...parsed(Queued, sent), location: sent.headers.get("location") };
}

async function run(batchId: string, itemId: string) {
  const lease = await batchStub(batchId).startItem(itemId);
  if (lease.action !== "run") throw new Error(lease.reason);
  return lease.attempt;
}

function expectSdkError(sent: Sent, status: number, errorClass: string, code?: string) {
  expect(sent.status).toBe(status);
  expect(sdkErrorClass(sent.status)).toBe(errorClass);
  const body = ErrorBody.parse(sent.body);
  if (code) expect(body.code).toBe(code);
}

describe("Spidra contract: POST /batch/scrape (batch.submit)", () => {
  it("answers 202 { status: queued, batchId, total } with Location /api/batch/scrape/{batchId}", async () => {
    const { apiKey } = await newAccount(100);
    const q = await submit(apiKey, {
      urls: ["https://example.com/page-1", "https://example.com/page-2"],
      output: "json",
    });
    expect(q.total).toBe(2);
    expect(q.location).toBe(`/api/batch/scrape/${q.batchId}`);
  });

  it.each([["json"], ["markdown"], [undefined]])("accepts output %s (default json)", async (output) => {
    const { apiKey } = await newAccount(100);
    const q = await submit(apiKey, output ? { urls: urls(1), output } : { urls: urls(1) });
    const list = parsed(List, await sdk(apiKey, "GET", "/batch/scrape"));
    expect(list.jobs.find((j) => j.uuid === q.batchId)?.outputFormat).toBe(output ?? "json");
  });

  it("out of credits: 403, which the SDK raises as SpidraInsufficientCreditsError", async () => {
    const { apiKey } = await newAccount(1);
    expectSdkError(
      await sdk(apiKey, "POST", "/batch/scrape", { urls: urls(1) }),
      403,
      "SpidraInsufficientCreditsError",
    );
  });

  it("no key: 401 (SpidraAuthenticationError); a wrong key: 403", async () => {
    expectSdkError(await sdk("", "POST", "/batch/scrape", { urls: urls(1) }), 401, "SpidraAuthenticationError");
    const wrong = await sdk("bsk_not_a_key", "GET", "/batch/scrape");
    expect(wrong.status).toBe(403);
    ErrorBody.parse(wrong.body);
  });
});

describe("Spidra contract: GET /batch/scrape/{batchId} (batch.get, batch.run's poll)", () => {
  it("has every documented field; items go pending → running (jobId set) → completed (result) or failed (error string)", async () => {
    const { apiKey } = await newAccount(100);
    const q = await submit(apiKey, { urls: urls(3), output: "json" });
    let b = parsed(BatchStatus, await sdk(apiKey, "GET", `/batch/scrape/${q.batchId}`));
    expect(b).toMatchObject({ status: "pending", totalUrls: 3, completedCount: 0, failedCount: 0, finishedAt: null });
    expect(b.items.map((i) => [i.status, i.jobId, i.result, i.error, i.screenshotUrl])).toEqual([
      ["pending", null, null, null, null],
      ["pending", null, null, null, null],
      ["pending", null, null, null, null],
    ]);
    const ids = b.items.map((i) => i.uuid);
    const stub = batchStub(q.batchId);
    await stub.completeItem(ids[0]!, await run(q.batchId, ids[0]!), { title: "A" });
    await stub.failItem(ids[1]!, await run(q.batchId, ids[1]!), { code: "HTTP_404", message: "Not Found" });
    await run(q.batchId, ids[2]!);
    b = parsed(BatchStatus, await sdk(apiKey, "GET", `/batch/scrape/${q.batchId}`));
    expect(b).toMatchObject({ status: "running", completedCount: 1, failedCount: 1 });
    const [done, failed, running] = b.items;
    expect(done).toMatchObject({ status: "completed", result: { title: "A" }, error: null, creditsUsed: 2 });
    expect(failed).toMatchObject({ status: "failed", result: null, error: "Not Found", creditsUsed: 0 });
    expect(running).toMatchObject({ status: "running", result: null, error: null });
    for (const i of b.items) expect(i.jobId).toEqual(expect.any(String));
    expect(done!.startedAt).not.toBeNull();
    expect(done!.finishedAt).not.toBeNull();
  });

  it.each([51, 120])("returns all %i items: the SDK never follows a cursor", async (n) => {
    const { apiKey } = await newAccount(1000);
    const q = await submit(apiKey, { urls: urls(n), output: "markdown" });
    const b = parsed(BatchStatus, await sdk(apiKey, "GET", `/batch/scrape/${q.batchId}`));
    expect(b.totalUrls).toBe(n);
    expect(b.items.map((i) => i.url)).toEqual(urls(n));
  });

  it("404 for an unknown batch and another account's batch", async () => {
    const { apiKey } = await newAccount(100);
    const other = await newAccount(100);
    const theirs = await submit(other.apiKey, { urls: urls(1) });
    expectSdkError(await sdk(apiKey, "GET", `/batch/scrape/${crypto.randomUUID()}`), 404, "SpidraError");
    expectSdkError(await sdk(apiKey, "GET", `/batch/scrape/${theirs.batchId}`), 404, "SpidraError");
  });
});

describe("Spidra contract: DELETE /batch/scrape/{batchId} (batch.cancel)", () => {
  it("the seed's figures: 2 running, 8 pending → { cancelled, 8 items, 16 credits }; again → 409 ALREADY_TERMINAL", async () => {
    const { apiKey } = await newAccount(100);
    const q = await submit(apiKey, { urls: urls(10), output: "json" });
    const ids = parsed(BatchStatus, await sdk(apiKey, "GET", `/batch/scrape/${q.batchId}`)).items.map((i) => i.uuid);
    await run(q.batchId, ids[0]!);
    await run(q.batchId, ids[1]!);
    const first = await sdk(apiKey, "DELETE", `/batch/scrape/${q.batchId}`);
    expect(first.status).toBe(200);
    expect(parsed(Cancelled, first)).toEqual({ status: "cancelled", cancelledItems: 8, creditsRefunded: 16 });
    const again = await sdk(apiKey, "DELETE", `/batch/scrape/${q.batchId}`);
    expectSdkError(again, 409, "SpidraError", "ALREADY_TERMINAL");
    expect(again.body.message).toBe("Cannot cancel a batch that is already cancelled.");
    const b = parsed(BatchStatus, await sdk(apiKey, "GET", `/batch/scrape/${q.batchId}`));
    expect(b.status).toBe("cancelled");
    expect(b.items.filter((i) => i.status === "cancelled")).toHaveLength(8);
    for (const i of b.items.filter((x) => x.status === "cancelled")) expect(i.creditsUsed).toBe(0);
  });

  it("401 without a key, 404 for an unknown batch", async () => {
    const { apiKey } = await newAccount(100);
    expectSdkError(await sdk("", "DELETE", `/batch/scrape/${crypto.randomUUID()}`), 401, "SpidraAuthenticationError");
    expectSdkError(await sdk(apiKey, "DELETE", `/batch/scrape/${crypto.randomUUID()}`), 404, "SpidraError");
  });
});

describe("Spidra contract: POST /batch/scrape/{batchId}/retry (batch.retry)", () => {
  it("202 { queued, retriedCount }: failed items back to pending, failedCount down, batch running", async () => {
    const { apiKey } = await newAccount(100);
    const q = await submit(apiKey, { urls: urls(2), output: "json" });
    const ids = parsed(BatchStatus, await sdk(apiKey, "GET", `/batch/scrape/${q.batchId}`)).items.map((i) => i.uuid);
    const stub = batchStub(q.batchId);
    await stub.completeItem(ids[0]!, await run(q.batchId, ids[0]!), { ok: true });
    await stub.failItem(ids[1]!, await run(q.batchId, ids[1]!), { code: "HTTP_404", message: "Not Found" });
    await drainOutbox(q.batchId);
    const retried = await sdk(apiKey, "POST", `/batch/scrape/${q.batchId}/retry`, {});
    expect(retried.status).toBe(202);
    expect(parsed(Retried, retried)).toEqual({ status: "queued", retriedCount: 1 });
    const b = parsed(BatchStatus, await sdk(apiKey, "GET", `/batch/scrape/${q.batchId}`));
    expect(b).toMatchObject({ status: "running", failedCount: 0, completedCount: 1 });
    expect(b.items[1]).toMatchObject({ status: "pending", error: null, jobId: null });
  });

  it("400 when there is nothing to retry; 403 (insufficient credits) when the retry cannot be paid for", async () => {
    const { apiKey } = await newAccount(2);
    const q = await submit(apiKey, { urls: urls(1), output: "json" });
    const [id] = parsed(BatchStatus, await sdk(apiKey, "GET", `/batch/scrape/${q.batchId}`)).items.map((i) => i.uuid);
    await batchStub(q.batchId).completeItem(id!, await run(q.batchId, id!), { ok: true });
    await drainOutbox(q.batchId);
    expectSdkError(await sdk(apiKey, "POST", `/batch/scrape/${q.batchId}/retry`, {}), 400, "SpidraError");

    const poor = await newAccount(4);
    const p = await submit(poor.apiKey, { urls: urls(2), output: "json" });
    const pids = parsed(BatchStatus, await sdk(poor.apiKey, "GET", `/batch/scrape/${p.batchId}`)).items.map(
      (i) => i.uuid,
    );
    const stub = batchStub(p.batchId);
    await stub.completeItem(pids[0]!, await run(p.batchId, pids[0]!), { ok: true });
    await stub.failItem(pids[1]!, await run(p.batchId, pids[1]!), { code: "EXTRACTION_LIMIT", message: "charged" });
    await drainOutbox(p.batchId);
    const refused = await sdk(poor.apiKey, "POST", `/batch/scrape/${p.batchId}/retry`, {});
    expectSdkError(refused, 403, "SpidraInsufficientCreditsError", "INSUFFICIENT_CREDITS");
  });
});

describe("Spidra contract: GET /batch/scrape (batch.list)", () => {
  it("newest first, limit 20 by default and 50 at most, with outputFormat and scrapingChannel", async () => {
    const { apiKey } = await newAccount(1000);
    const created: string[] = [];
    for (let i = 0; i < 22; i++)
      created.push((await submit(apiKey, { urls: urls(1), output: i % 2 ? "markdown" : "json" })).batchId);
    const page1 = parsed(List, await sdk(apiKey, "GET", "/batch/scrape"));
    expect(page1.pagination).toEqual({ page: 1, limit: 20, total: 22, totalPages: 2 });
    expect(page1.jobs.map((j) => j.uuid)).toEqual(created.slice().reverse().slice(0, 20));
    expect(page1.jobs.map((j) => j.outputFormat)).toEqual(
      created
        .map((_, i) => (i % 2 ? "markdown" : "json"))
        .reverse()
        .slice(0, 20),
    );
    for (const j of page1.jobs) expect(j.scrapingChannel).toBe("api");
    const page2 = parsed(List, await sdk(apiKey, "GET", "/batch/scrape?page=2&limit=20"));
    expect(page2.jobs.map((j) => j.uuid)).toEqual(created.slice(0, 2).reverse());
    expect(parsed(List, await sdk(apiKey, "GET", "/batch/scrape?limit=50")).jobs).toHaveLength(22);
    expectSdkError(await sdk(apiKey, "GET", "/batch/scrape?limit=51"), 400, "SpidraError");
  });
});

describe("Spidra contract: GET /usage-stats (usage.get)", () => {
  it.each([
    ["7d", 7],
    ["30d", 30],
    ["weekly", 7],
  ])(
    "range=%s: { status, data } with %i rows of label, date, tokens, requests, crawls, captchas, latency, credits",
    async (range, n) => {
      const { apiKey } = await newAccount(100);
      const u = parsed(UsageStats, await sdk(apiKey, "GET", `/usage-stats?range=${range}`));
      expect(u.data).toHaveLength(n);
    },
  );

  it("400 without a range or with another one", async () => {
    const { apiKey } = await newAccount(100);
    expectSdkError(await sdk(apiKey, "GET", "/usage-stats"), 400, "SpidraError");
    expectSdkError(await sdk(apiKey, "GET", "/usage-stats?range=90d"), 400, "SpidraError");
  });
});

describe("Spidra contract: item shape", () => {
  it("an item parses on its own with the documented fields (the schema itself refuses our old object error)", () => {
    const item = {
      uuid: crypto.randomUUID(),
      url: "https://example.com/",
      jobId: null,
      status: "failed",
      result: null,
      error: { code: "HTTP_404", message: "Not Found" },
      creditsUsed: 0,
      startedAt: null,
      finishedAt: null,
      screenshotUrl: null,
    };
    expect(Item.safeParse(item).success).toBe(false);
    expect(Item.safeParse({ ...item, error: "Not Found" }).success).toBe(true);
  });
});
