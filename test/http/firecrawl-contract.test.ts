/**
 * The Firecrawl-compatible surface against Firecrawl's v2 API reference (docs.firecrawl.dev,
 * api-reference/endpoint/batch-scrape, batch-scrape-get, batch-scrape-delete,
 * batch-scrape-get-errors) and what its JS SDK reads (@mendable/firecrawl-js 4.x,
 * src/v2/methods/batch.ts, utils/pagination.ts). The expected shapes below are written from
 * that reference; the values from what this test made happen.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Env } from "../../src/env";
import { runItem } from "../../src/executor/run-item";
import { documentPage } from "../../src/http/firecrawl/documents";
import {
  batchStub,
  callJson,
  drainOutbox,
  expectBalanced,
  getBatch,
  getCredits,
  keyHeaders,
  newAccount,
} from "../helpers";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

function bearer(apiKey: string, extra: Record<string, string> = {}) {
  return { authorization: `Bearer ${apiKey}`, "content-type": "application/json", ...extra };
}

function v2(
  path: string,
  apiKey: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
) {
  return callJson(path, {
    method: init.method ?? "GET",
    headers: bearer(apiKey, init.headers),
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
}

/** Firecrawl's error envelope: `{ success: false, error: string }` with a 4xx/5xx status. */
function expectFirecrawlError(res: { status: number; body: any }, status: number, mentions?: RegExp) {
  expect(res.status).toBe(status);
  expect(res.body.success).toBe(false);
  expect(typeof res.body.error).toBe("string");
  expect(JSON.stringify(res.body)).not.toMatch(/\bat .*\.(ts|js):\d+/); // no stack trace
  if (mentions) expect(res.body.error).toMatch(mentions);
}

const PAGE = `<!doctype html><html lang="en"><head><title>Widgets</title>
<meta name="description" content="All about widgets"><script>var x = 1;</script></head>
<body><nav>menu</nav><main><h1>Widgets</h1><p class="intro">Hello &amp; welcome</p>
<div class="ad">buy now</div><a href="/next">next</a> <a href="https://other.example/x">x</a></main></body></html>`;

/** A fetcher standing in for the web: this page at every URL, or 404 where the path says so. */
const web: typeof fetch = async (input) => {
  const url = String(input instanceof Request ? input.url : input);
  if (url.includes("missing")) return new Response("gone", { status: 404 });
  return new Response(PAGE, { status: 200, headers: { "content-type": "text/html; charset=utf-8" } });
};

/** Runs one pending item through the real executor (fetch stubbed), and settles it. */
async function runOne(batchId: string, itemId: string) {
  const lease = await batchStub(batchId).startItem(itemId);
  if (lease.action !== "run") throw new Error("not started");
  const outcome = await runItem(lease, env as Env, web);
  const stub = batchStub(batchId);
  return outcome.ok
    ? stub.completeItem(itemId, lease.attempt, outcome.inline, outcome.meta)
    : stub.failItem(itemId, lease.attempt, outcome.error, { retryable: false, meta: outcome.meta });
}

async function itemIds(apiKey: string, batchId: string): Promise<string[]> {
  const { body } = await callJson(`/api/batch/scrape/${batchId}?limit=100`, { headers: keyHeaders(apiKey) });
  return body.items.map((i: { uuid: string }) => i.uuid);
}

describe("POST /v2/batch/scrape", () => {
  it("answers 200 { success: true, id, url, invalidURLs }, leaving out URLs that can never be fetched", async () => {
    const { apiKey } = await newAccount(100);
    const res = await v2("/v2/batch/scrape", apiKey, {
      method: "POST",
      body: {
        urls: ["https://example.com/a", "not a url", "http://10.0.0.1/x", "https://example.com/b"],
        formats: ["markdown"],
      },
    });
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(["id", "invalidURLs", "success", "url"]);
    expect(res.body.success).toBe(true);
    expect(res.body.id).toMatch(UUID);
    expect(res.body.url).toBe(`https://api.test/v2/batch/scrape/${res.body.id}`);
    expect(res.body.invalidURLs).toEqual(["not a url", "http://10.0.0.1/x"]);
    // Two valid URLs, one credit each, held.
    expect((await getCredits(apiKey)).reserved).toBe(2);
  });

  it("with ignoreInvalidURLs: false refuses the request, naming the URL, and reserves nothing", async () => {
    const { apiKey } = await newAccount(100);
    const res = await v2("/v2/batch/scrape", apiKey, {
      method: "POST",
      body: { urls: ["https://example.com/a", "http://10.0.0.1/x"], ignoreInvalidURLs: false },
    });
    expectFirecrawlError(res, 400, /urls\[1\]/);
    expect((await getCredits(apiKey)).reserved).toBe(0);
  });

  it.each([
    // AI is off in tests (test/http/firecrawl-ai.test.ts has it on): the json format is refused.
    [{ formats: [{ type: "json", prompt: "p" }] }, /^formats\[0\]: AI extraction is turned off/],
    [{ formats: ["markdown", "json"] }, /^formats\[1\]: AI extraction is turned off/],
    [{ formats: ["screenshot"] }, /formats\[0\].*screenshot.*not available/],
    [{ mobile: true }, /^mobile:/],
    [{ waitFor: 1000 }, /^waitFor:/],
    [{ actions: [{ type: "wait", milliseconds: 5 }] }, /^actions:/],
    [{ zeroDataRetention: true }, /^zeroDataRetention:/],
    [{ appendToId: "00000000-0000-0000-0000-000000000000" }, /^appendToId:/],
    [{ headers: { Cookie: "a=b" } }, /headers\.Cookie/],
    [{ headers: { "Proxy-Authorization": "x" } }, /headers\.Proxy-Authorization/],
    [{ excludeTags: ["div + p"] }, /excludeTags\[0\]/],
    [{ timeout: 10 }, /timeout/],
    [{ webhook: { url: "https://hooks.example/x", headers: { a: "b" } } }, /webhook\.headers/],
    [{ webhook: { url: "https://hooks.example/x", events: ["completed"] } }, /webhook\.events/],
    [{ somethingElse: 1 }, /somethingElse/],
  ])("refuses %j with 400 naming the option", async (extra, message) => {
    const { apiKey } = await newAccount(100);
    const res = await v2("/v2/batch/scrape", apiKey, {
      method: "POST",
      body: { urls: ["https://example.com/a"], ...extra },
    });
    expectFirecrawlError(res, 400, message);
    expect((await getCredits(apiKey)).reserved).toBe(0);
  });

  it("accepts the options it honours, and what the SDK always sends (origin)", async () => {
    const { apiKey } = await newAccount(100);
    const res = await v2("/v2/batch/scrape", apiKey, {
      method: "POST",
      body: {
        urls: ["https://example.com/a"],
        formats: ["markdown", { type: "html" }, "rawHtml", "links"],
        onlyMainContent: false,
        includeTags: ["main"],
        excludeTags: [".ad"],
        headers: { "Accept-Language": "en" },
        timeout: 30000,
        maxAge: 0,
        mobile: false,
        maxConcurrency: 2,
        webhook: { url: "https://hooks.example/x", events: ["started", "page", "completed", "failed"] },
        origin: "js-sdk@4.42.0",
      },
    });
    expect(res.status).toBe(200);
    expect(res.body.success).toBe(true);
  });

  it("answers missing and wrong credentials in the envelope", async () => {
    const none = await callJson("/v2/batch/scrape", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ urls: ["https://example.com/a"] }),
    });
    expectFirecrawlError(none, 401);
    const wrong = await v2("/v2/batch/scrape", "fc-not-a-key", {
      method: "POST",
      body: { urls: ["https://example.com/a"] },
    });
    expectFirecrawlError(wrong, 403);
  });

  it("x-idempotency-key: a retry answers the same id; the same key with another body is refused", async () => {
    const { apiKey } = await newAccount(100);
    const body = { urls: ["https://example.com/a", "https://example.com/b"] };
    const headers = { "x-idempotency-key": "retry-me-1" };
    const first = await v2("/v2/batch/scrape", apiKey, { method: "POST", body, headers });
    const again = await v2("/v2/batch/scrape", apiKey, { method: "POST", body, headers });
    expect(first.status).toBe(200);
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(first.body.id);
    expect((await getCredits(apiKey)).reserved).toBe(2);
    const other = await v2("/v2/batch/scrape", apiKey, {
      method: "POST",
      body: { urls: ["https://example.com/c"] },
      headers,
    });
    expectFirecrawlError(other, 422);
  });
});

describe("GET /v2/batch/scrape/:id and /errors", () => {
  it("status, documents with the formats asked for and their metadata; a 404 page is in /errors", async () => {
    const { apiKey } = await newAccount(100);
    const created = await v2("/v2/batch/scrape", apiKey, {
      method: "POST",
      body: {
        urls: ["https://example.com/ok", "https://example.com/missing", "https://example.com/later"],
        formats: ["markdown", "html", "links"],
        excludeTags: [".ad"],
      },
    });
    const id: string = created.body.id;
    const [ok, missing] = await itemIds(apiKey, id);
    await runOne(id, ok!);
    await runOne(id, missing!);

    const res = await v2(`/v2/batch/scrape/${id}`, apiKey);
    expect(res.status).toBe(200);
    expect(Object.keys(res.body).sort()).toEqual(
      ["completed", "creditsUsed", "data", "expiresAt", "next", "status", "success", "total"].sort(),
    );
    expect(res.body).toMatchObject({
      success: true,
      status: "scraping",
      total: 3,
      completed: 1,
      creditsUsed: 1,
      next: null,
    });
    expect(res.body.expiresAt).toMatch(ISO_DATE);
    expect(res.body.data).toHaveLength(1);
    const doc = res.body.data[0];
    expect(Object.keys(doc).sort()).toEqual(["html", "links", "markdown", "metadata"]);
    expect(doc.metadata).toEqual({
      sourceURL: "https://example.com/ok",
      url: "https://example.com/ok",
      statusCode: 200,
      title: "Widgets",
      description: "All about widgets",
      language: "en",
    });
    expect(doc.markdown).toContain("# Widgets");
    expect(doc.markdown).toContain("Hello & welcome");
    expect(doc.markdown).not.toContain("buy now"); // excludeTags
    expect(doc.html).toContain('<p class="intro">Hello &amp; welcome</p>');
    expect(doc.html).not.toContain("<script");
    expect(doc.html).not.toContain("buy now");
    expect(doc.links).toEqual(["https://example.com/next", "https://other.example/x"]);

    const errors = await v2(`/v2/batch/scrape/${id}/errors`, apiKey);
    expect(errors.status).toBe(200);
    expect(Object.keys(errors.body).sort()).toEqual(["errors", "robotsBlocked"]);
    expect(errors.body.robotsBlocked).toEqual([]);
    expect(errors.body.errors).toHaveLength(1);
    const e = errors.body.errors[0];
    expect(e).toMatchObject({ id: missing, url: "https://example.com/missing" });
    expect(typeof e.error).toBe("string");
    expect(e.timestamp).toMatch(ISO_DATE);
  });

  it("rawHtml is the page as fetched; includeTags keeps only what they match", async () => {
    const { apiKey } = await newAccount(100);
    const created = await v2("/v2/batch/scrape", apiKey, {
      method: "POST",
      body: { urls: ["https://example.com/ok"], formats: ["rawHtml", "markdown"], includeTags: ["p.intro"] },
    });
    const [item] = await itemIds(apiKey, created.body.id);
    await runOne(created.body.id, item!);
    const res = await v2(`/v2/batch/scrape/${created.body.id}`, apiKey);
    expect(res.body.status).toBe("completed");
    const doc = res.body.data[0];
    expect(doc.rawHtml).toBe(PAGE);
    expect(doc.markdown.trim()).toBe("Hello & welcome");
  });

  it("next pages through every document exactly once, each page with success: true", async () => {
    const { apiKey } = await newAccount(1000);
    const n = 105;
    const urlList = Array.from({ length: n }, (_, i) => `https://example.com/p/${i}`);
    const created = await v2("/v2/batch/scrape", apiKey, { method: "POST", body: { urls: urlList } });
    const id: string = created.body.id;
    const stub = batchStub(id);
    const ids: string[] = [];
    let cursor: string | null = null;
    do {
      const page: { body: any } = await callJson(
        `/api/batch/scrape/${id}?limit=100${cursor ? `&cursor=${cursor}` : ""}`,
        {
          headers: keyHeaders(apiKey),
        },
      );
      ids.push(...page.body.items.map((i: { uuid: string }) => i.uuid));
      cursor = page.body.nextCursor;
    } while (cursor);
    for (let at = 0; at < n; at += 100) {
      const chunk = ids.slice(at, at + 100);
      const leases = await stub.startItems(chunk.map((itemId) => ({ itemId })));
      await stub.settleItems(
        leases.map((lease, i) => {
          if (lease.action !== "run") throw new Error("not started");
          const url = urlList[at + i]!;
          return {
            itemId: chunk[i]!,
            attempt: lease.attempt,
            outcome: "completed" as const,
            result: { markdown: `page ${at + i}`, metadata: { sourceURL: url, url, statusCode: 200 } },
            meta: { statusCode: 200, finalUrl: url },
          };
        }),
      );
    }
    const seen: string[] = [];
    let next: string | null = `/v2/batch/scrape/${id}`;
    let pages = 0;
    while (next) {
      const res = await v2(next.replace("https://api.test", ""), apiKey);
      expect(res.status).toBe(200);
      expect(res.body.success).toBe(true);
      seen.push(...res.body.data.map((d: { metadata: { sourceURL: string } }) => d.metadata.sourceURL));
      next = res.body.next;
      pages++;
    }
    expect(pages).toBe(2);
    expect(seen).toEqual(urlList);
  });

  it("a page holds about FIRECRAWL_PAGE_BYTES (at least one document) and FIRECRAWL_PAGE_SIZE documents", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const urlList = Array.from({ length: 5 }, (_, i) => `https://example.com/q/${i}`);
    const created = await v2("/v2/batch/scrape", apiKey, { method: "POST", body: { urls: urlList } });
    const id: string = created.body.id;
    const ids = await itemIds(apiKey, id);
    const stub = batchStub(id);
    const leases = await stub.startItems(ids.map((itemId) => ({ itemId })));
    await stub.settleItems(
      leases.map((lease, i) => ({
        itemId: ids[i]!,
        attempt: lease.action === "run" ? lease.attempt : 0,
        outcome: "completed" as const,
        result: { markdown: "x".repeat(1000), metadata: { sourceURL: urlList[i]!, url: urlList[i]!, statusCode: 200 } },
      })),
    );
    const walk = async (vars: Record<string, string>) => {
      const sizes: number[] = [];
      let cursor = -1;
      for (;;) {
        const page = await documentPage({ ...env, ...vars } as Env, accountId, id, cursor);
        sizes.push(page.documents.length);
        if (page.nextCursor === null) return sizes;
        cursor = Number(page.nextCursor);
      }
    };
    expect(await walk({ FIRECRAWL_PAGE_BYTES: "2500" })).toEqual([2, 2, 1]);
    expect(await walk({ FIRECRAWL_PAGE_BYTES: "10" })).toEqual([1, 1, 1, 1, 1]);
    expect(await walk({ FIRECRAWL_PAGE_SIZE: "3" })).toEqual([3, 2]);
  });

  it("an unknown id is 404 in the envelope", async () => {
    const { apiKey } = await newAccount(10);
    expectFirecrawlError(await v2("/v2/batch/scrape/00000000-0000-4000-8000-000000000000", apiKey), 404);
    expectFirecrawlError(await v2("/v2/batch/scrape/nope/errors", apiKey), 404);
    expectFirecrawlError(await v2("/v2/crawl", apiKey), 404);
    const wrongMethod = await v2("/v2/batch/scrape", apiKey);
    expectFirecrawlError(wrongMethod, 405);
    expect(wrongMethod.res.headers.get("allow")).toBe("POST");
  });
});

describe("DELETE /v2/batch/scrape/:id", () => {
  it('answers { success: true, status: "cancelled" } with our exact cancelledItems and creditsRefunded; a finished batch 409', async () => {
    const { apiKey } = await newAccount(100);
    const created = await v2("/v2/batch/scrape", apiKey, {
      method: "POST",
      body: { urls: ["https://example.com/1", "https://example.com/2", "https://example.com/3"] },
    });
    const id: string = created.body.id;
    const [first] = await itemIds(apiKey, id);
    await runOne(id, first!);
    const res = await v2(`/v2/batch/scrape/${id}`, apiKey, { method: "DELETE" });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ success: true, status: "cancelled", cancelledItems: 2, creditsRefunded: 2 });
    const status = await v2(`/v2/batch/scrape/${id}`, apiKey);
    expect(status.body).toMatchObject({ status: "cancelled", total: 3, completed: 1, creditsUsed: 1 });
    expectFirecrawlError(await v2(`/v2/batch/scrape/${id}`, apiKey, { method: "DELETE" }), 409);
    await expectBalanced(apiKey, [id]);
  });
});

describe("one batch, every surface", () => {
  it("a batch created on /v2 is the same batch on /api, with the same credits", async () => {
    const { apiKey } = await newAccount(100);
    const created = await v2("/v2/batch/scrape", apiKey, {
      method: "POST",
      body: { urls: ["https://example.com/1", "https://example.com/missing"], formats: ["markdown"] },
    });
    const id: string = created.body.id;
    const ids = await itemIds(apiKey, id);
    for (const item of ids) await runOne(id, item);
    await drainOutbox(id);
    const fc = await v2(`/v2/batch/scrape/${id}`, apiKey);
    const api = await getBatch(apiKey, id);
    expect(api.status).toBe(200);
    expect(api.body).toMatchObject({ batchId: id, output: "document", creditsPerItem: 1, totalUrls: 2 });
    expect(api.body.creditsUsed).toBe(fc.body.creditsUsed);
    expect(api.body.completedCount).toBe(fc.body.completed);
    const credits = await expectBalanced(apiKey, [id]);
    expect(credits.used).toBe(1); // the 404 page is refunded
    expect(credits.balance).toBe(99);
    // The stored result is the same document on /api's result route.
    const item = api.body.items.find((i: { status: string }) => i.status === "completed");
    const stored = await callJson(item.resultUrl, { headers: keyHeaders(apiKey) });
    expect(stored.body.metadata.sourceURL).toBe("https://example.com/1");
    expect(stored.body.markdown).toBe(fc.body.data[0].markdown);
  });

  it("the OpenAPI document covers the surface", async () => {
    const { body } = await callJson("/openapi.json");
    expect(Object.keys(body.paths)).toEqual(
      expect.arrayContaining(["/v2/batch/scrape", "/v2/batch/scrape/{id}", "/v2/batch/scrape/{id}/errors"]),
    );
    expect(Object.keys(body.paths["/v2/batch/scrape/{id}"]).sort()).toEqual(["delete", "get"]);
    expect(body.components.securitySchemes.ApiKeyBearer).toMatchObject({ type: "http", scheme: "bearer" });
  });
});
