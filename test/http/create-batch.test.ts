import { describe, expect, it } from "vitest";
import { createBatch, getBatch, getCredits, newAccount, urls } from "../helpers";
import { expectError, grant, ledger, listBatches, UUID_RE } from "./support";

const ZERO = { reserved: 0, used: 0, refunded: 0 };

/** After a refused create: the account is exactly as it was, and no batch exists. */
async function expectUntouched(apiKey: string, credits: number) {
  expect(await getCredits(apiKey)).toEqual({ balance: credits, granted: credits, ...ZERO });
  expect((await listBatches(apiKey)).body.pagination.total).toBe(0);
  expect((await ledger(apiKey)).body.entries.filter((e: { kind: string }) => e.kind === "reserve")).toEqual([]);
}

describe("POST /api/batch/scrape: success", () => {
  it("answers 202 with the batch id, the total and a Location", async () => {
    const { apiKey } = await newAccount(100);
    const r = await createBatch(apiKey, { urls: urls(3) });
    expect(r.status).toBe(202);
    expect(r.body).toEqual({ status: "queued", batchId: expect.stringMatching(UUID_RE), total: 3 });
    expect(r.res.headers.get("location")).toBe(`/api/batch/scrape/${r.body.batchId}`);
  });

  it("queues every URL, in order, as a pending item that the Location serves", async () => {
    const { apiKey } = await newAccount(100);
    const list = urls(4);
    const r = await createBatch(apiKey, { urls: list });
    const got = await getBatch(apiKey, r.body.batchId);
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ batchId: r.body.batchId, status: "pending", totalUrls: 4, pendingCount: 4 });
    expect(got.body.items.map((i: { url: string }) => i.url)).toEqual(list);
    expect(got.body.items.every((i: { status: string }) => i.status === "pending")).toBe(true);
  });

  it("keeps duplicate URLs as separate items", async () => {
    const { apiKey } = await newAccount(100);
    const r = await createBatch(apiKey, { urls: ["https://example.com/x", "https://example.com/x"] });
    expect(r.body.total).toBe(2);
    expect((await getBatch(apiKey, r.body.batchId)).body.items).toHaveLength(2);
  });

  it("accepts selectors and maxConcurrency", async () => {
    const { apiKey } = await newAccount(100);
    const r = await createBatch(apiKey, {
      urls: urls(2),
      output: "markdown",
      selectors: { title: "h1", price: ".price > span" },
      maxConcurrency: 7,
    });
    expect(r.status).toBe(202);
    expect((await getBatch(apiKey, r.body.batchId)).body).toMatchObject({
      output: "markdown",
      maxConcurrency: 7,
      totalUrls: 2,
    });
  });

  it.each([1, 20])("accepts maxConcurrency %i", async (maxConcurrency) => {
    const { apiKey } = await newAccount(100);
    expect((await createBatch(apiKey, { urls: urls(1), maxConcurrency })).status).toBe(202);
  });

  it("accepts a URL of exactly 2048 characters", async () => {
    const { apiKey } = await newAccount(100);
    const url = `https://example.com/${"a".repeat(2048 - "https://example.com/".length)}`;
    expect(url).toHaveLength(2048);
    expect((await createBatch(apiKey, { urls: [url] })).status).toBe(202);
  });

  it("accepts exactly MAX_URLS_PER_BATCH (1000) URLs", async () => {
    const { apiKey } = await newAccount(2000);
    const r = await createBatch(apiKey, { urls: urls(1000) });
    expect(r.status).toBe(202);
    expect(r.body.total).toBe(1000);
    expect(await getCredits(apiKey)).toEqual({ balance: 0, reserved: 2000, used: 0, refunded: 0, granted: 2000 });
  });

  it("accepts http and https URLs, with ports, queries and fragments", async () => {
    const { apiKey } = await newAccount(100);
    const list = ["http://example.com", "https://example.com:8443/a?b=c#d", "https://xn--bcher-kva.example/"];
    expect((await createBatch(apiKey, { urls: list })).status).toBe(202);
  });
});

describe("POST /api/batch/scrape: pricing", () => {
  it.each([
    ["json by default", undefined, 5, 10],
    ["json", "json", 5, 10],
    ["markdown", "markdown", 5, 5],
  ])("reserves %s at its price", async (_label, output, n, cost) => {
    const { apiKey } = await newAccount(100);
    const r = await createBatch(apiKey, output === undefined ? { urls: urls(n) } : { urls: urls(n), output });
    expect(r.status).toBe(202);
    expect(await getCredits(apiKey)).toEqual({
      balance: 100 - cost,
      reserved: cost,
      used: 0,
      refunded: 0,
      granted: 100,
    });
    expect((await getBatch(apiKey, r.body.batchId)).body).toMatchObject({
      creditsPerItem: cost / n,
      creditsReserved: cost,
      creditsUsed: 0,
      creditsRefunded: 0,
    });
  });

  it("accepts a batch that costs exactly the balance", async () => {
    const { apiKey } = await newAccount(10);
    expect((await createBatch(apiKey, { urls: urls(5) })).status).toBe(202);
    expect(await getCredits(apiKey)).toEqual({ balance: 0, reserved: 10, used: 0, refunded: 0, granted: 10 });
  });

  it("refuses a json batch one credit short with 403 INSUFFICIENT_CREDITS (Spidra's status for it), reserving nothing and listing nothing", async () => {
    const { apiKey } = await newAccount(11);
    expectError(await createBatch(apiKey, { urls: urls(6) }), 403, "INSUFFICIENT_CREDITS");
    await expectUntouched(apiKey, 11);
  });

  it("refuses a markdown batch one credit short with 403", async () => {
    const { apiKey } = await newAccount(5);
    expectError(await createBatch(apiKey, { urls: urls(6), output: "markdown" }), 403, "INSUFFICIENT_CREDITS");
    await expectUntouched(apiKey, 5);
  });

  it("refuses any batch on an account with no credits", async () => {
    const { apiKey } = await newAccount(0);
    expectError(await createBatch(apiKey, { urls: urls(1), output: "markdown" }), 403, "INSUFFICIENT_CREDITS");
    await expectUntouched(apiKey, 0);
  });

  it("counts credits already reserved by earlier batches", async () => {
    const { apiKey } = await newAccount(10);
    expect((await createBatch(apiKey, { urls: urls(3) })).status).toBe(202);
    expectError(await createBatch(apiKey, { urls: urls(3) }), 403, "INSUFFICIENT_CREDITS");
    expect(await getCredits(apiKey)).toEqual({ balance: 4, reserved: 6, used: 0, refunded: 0, granted: 10 });
    expect((await listBatches(apiKey)).body.pagination.total).toBe(1);
  });

  it("a 403 INSUFFICIENT_CREDITS with an Idempotency-Key does not burn the key: the same request succeeds once credits arrive", async () => {
    const { accountId, apiKey } = await newAccount(1);
    const body = { urls: urls(2) };
    expectError(await createBatch(apiKey, body, { "idempotency-key": "after-topup" }), 403, "INSUFFICIENT_CREDITS");
    expect((await grant(accountId, 10)).status).toBe(200);
    const r = await createBatch(apiKey, body, { "idempotency-key": "after-topup" });
    expect(r.status).toBe(202);
    expect(await getCredits(apiKey)).toMatchObject({ balance: 7, reserved: 4 });
  });
});

const long = `https://example.com/${"a".repeat(2049 - "https://example.com/".length)}`;

const invalidBodies: [string, unknown, string][] = [
  ["missing urls", {}, "urls"],
  ["urls null", { urls: null }, "urls"],
  ["an empty urls array", { urls: [] }, "urls"],
  ["urls as a string, not an array", { urls: "https://example.com" }, "urls"],
  ["urls as an object", { urls: { 0: "https://example.com" } }, "urls"],
  ["a URL that is not a URL", { urls: ["https://example.com/a", "not a url"] }, "urls[1]"],
  ["a relative URL", { urls: ["/just/a/path"] }, "urls[0]"],
  ["a URL that is a number", { urls: ["https://example.com/a", 42] }, "urls[1]"],
  ["an empty string URL", { urls: ["https://example.com/a", "https://example.com/b", ""] }, "urls[2]"],
  ["an ftp: URL", { urls: ["https://example.com/a", "ftp://example.com/file"] }, "urls[1]"],
  ["a javascript: URL", { urls: ["javascript:alert(1)"] }, "urls[0]"],
  ["a file: URL", { urls: ["file:///etc/passwd"] }, "urls[0]"],
  ["a data: URL", { urls: ["data:text/html,hi"] }, "urls[0]"],
  ["a URL with user:pass@", { urls: ["https://example.com/a", "https://user:pass@example.com/"] }, "urls[1]"],
  ["a URL with a user name only", { urls: ["https://user@example.com/"] }, "urls[0]"],
  ["a URL over 2048 characters", { urls: ["https://example.com/a", long] }, "urls[1]"],
  ["more than 1000 URLs", { urls: urls(1001) }, "urls"],
  ["an unknown top-level field", { urls: ["https://example.com/a"], webhook: "https://evil.test" }, "webhook"],
  ["a bad output", { urls: ["https://example.com/a"], output: "xml" }, "output"],
  ["an output in the wrong case", { urls: ["https://example.com/a"], output: "JSON" }, "output"],
  ["a null output", { urls: ["https://example.com/a"], output: null }, "output"],
  ["a fractional maxConcurrency", { urls: ["https://example.com/a"], maxConcurrency: 1.5 }, "maxConcurrency"],
  ["maxConcurrency 0", { urls: ["https://example.com/a"], maxConcurrency: 0 }, "maxConcurrency"],
  ["maxConcurrency 21", { urls: ["https://example.com/a"], maxConcurrency: 21 }, "maxConcurrency"],
  ["a negative maxConcurrency", { urls: ["https://example.com/a"], maxConcurrency: -1 }, "maxConcurrency"],
  ["maxConcurrency as a string", { urls: ["https://example.com/a"], maxConcurrency: "5" }, "maxConcurrency"],
  ["selectors as a string", { urls: ["https://example.com/a"], selectors: "h1" }, "selectors"],
  ["selectors as an array", { urls: ["https://example.com/a"], selectors: ["h1"] }, "selectors"],
  ["a selector that is not a string", { urls: ["https://example.com/a"], selectors: { title: 5 } }, "selectors"],
  ["an empty selector", { urls: ["https://example.com/a"], selectors: { title: "" } }, "selectors"],
  [
    "a selector name that is not an identifier",
    { urls: ["https://example.com/a"], selectors: { "1 bad": "h1" } },
    "selectors",
  ],
  [
    "more than 20 selectors",
    {
      urls: ["https://example.com/a"],
      selectors: Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`s${i}`, "h1"])),
    },
    "selectors",
  ],
];

describe("POST /api/batch/scrape: validation", () => {
  it.each(invalidBodies)(
    "refuses %s with 400 VALIDATION_ERROR naming the field, reserving nothing",
    async (_label, body, field) => {
      const { apiKey } = await newAccount(5000);
      const r = await createBatch(apiKey, body);
      expectError(r, 400, "VALIDATION_ERROR");
      expect(r.body.message).toContain(field);
      await expectUntouched(apiKey, 5000);
    },
  );

  it.each([
    ["a JSON array", [{ urls: ["https://example.com/a"] }]],
    ["JSON null", null],
    ["a JSON string", "https://example.com/a"],
    ["a JSON number", 42],
  ])("refuses a body that is %s with 400 VALIDATION_ERROR", async (_label, body) => {
    const { apiKey } = await newAccount(100);
    expectError(await createBatch(apiKey, body), 400, "VALIDATION_ERROR");
    await expectUntouched(apiKey, 100);
  });

  it("refuses an Idempotency-Key longer than 255 characters", async () => {
    const { apiKey } = await newAccount(100);
    const r = await createBatch(apiKey, { urls: urls(1) }, { "idempotency-key": "k".repeat(256) });
    expectError(r, 400, "VALIDATION_ERROR");
    expect(r.body.message.toLowerCase()).toContain("idempotency-key");
    await expectUntouched(apiKey, 100);
  });
});

describe("POST /api/batch/scrape: Idempotency-Key", () => {
  it("replays the same key and body: same 202 body and Location, one batch, credits reserved once", async () => {
    const { apiKey } = await newAccount(100);
    const body = { urls: urls(3), output: "json" };
    const first = await createBatch(apiKey, body, { "idempotency-key": "req-1" });
    const second = await createBatch(apiKey, body, { "idempotency-key": "req-1" });
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.body).toEqual(first.body);
    expect(second.res.headers.get("location")).toBe(first.res.headers.get("location"));
    expect(await getCredits(apiKey)).toEqual({ balance: 94, reserved: 6, used: 0, refunded: 0, granted: 100 });
    expect((await listBatches(apiKey)).body.pagination.total).toBe(1);
    const reserves = (await ledger(apiKey)).body.entries.filter((e: { kind: string }) => e.kind === "reserve");
    expect(reserves).toHaveLength(1);
  });

  it("treats the same body with keys in another order as the same request", async () => {
    const { apiKey } = await newAccount(100);
    const first = await createBatch(
      apiKey,
      { urls: urls(2), output: "markdown", selectors: { a: "h1", b: "h2" }, maxConcurrency: 3 },
      { "idempotency-key": "req-2" },
    );
    const second = await createBatch(
      apiKey,
      { maxConcurrency: 3, selectors: { b: "h2", a: "h1" }, output: "markdown", urls: urls(2) },
      { "idempotency-key": "req-2" },
    );
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.body).toEqual(first.body);
    expect(await getCredits(apiKey)).toMatchObject({ balance: 98, reserved: 2 });
  });

  it.each([
    ["another URL list", { urls: urls(3, "https://example.org/other") }],
    ["URLs in another order", { urls: urls(3).reverse() }],
    ["another output", { urls: urls(3), output: "markdown" }],
    ["an added field", { urls: urls(3), maxConcurrency: 2 }],
  ])("refuses the same key with %s: 422 IDEMPOTENCY_KEY_REUSED, nothing more reserved", async (_label, other) => {
    const { apiKey } = await newAccount(100);
    expect((await createBatch(apiKey, { urls: urls(3) }, { "idempotency-key": "req-3" })).status).toBe(202);
    expectError(await createBatch(apiKey, other, { "idempotency-key": "req-3" }), 422, "IDEMPOTENCY_KEY_REUSED");
    expect(await getCredits(apiKey)).toEqual({ balance: 94, reserved: 6, used: 0, refunded: 0, granted: 100 });
    expect((await listBatches(apiKey)).body.pagination.total).toBe(1);
  });

  it("answers 5 concurrent requests with the same key with one batch, reserved once", async () => {
    const { apiKey } = await newAccount(100);
    const body = { urls: urls(4) };
    const all = await Promise.all(
      Array.from({ length: 5 }, () => createBatch(apiKey, body, { "idempotency-key": "req-4" })),
    );
    expect(all.map((r) => r.status)).toEqual([202, 202, 202, 202, 202]);
    const ids = new Set(all.map((r) => r.body.batchId));
    expect(ids.size).toBe(1);
    for (const r of all) expect(r.body).toEqual({ status: "queued", batchId: all[0]!.body.batchId, total: 4 });
    expect(await getCredits(apiKey)).toEqual({ balance: 92, reserved: 8, used: 0, refunded: 0, granted: 100 });
    expect((await listBatches(apiKey)).body.pagination.total).toBe(1);
    expect((await getBatch(apiKey, all[0]!.body.batchId)).body).toMatchObject({
      totalUrls: 4,
      pendingCount: 4,
      creditsReserved: 8,
    });
  });

  it("creates separate batches for different keys", async () => {
    const { apiKey } = await newAccount(100);
    const a = await createBatch(apiKey, { urls: urls(1) }, { "idempotency-key": "k-a" });
    const b = await createBatch(apiKey, { urls: urls(1) }, { "idempotency-key": "k-b" });
    expect(a.body.batchId).not.toBe(b.body.batchId);
    expect(await getCredits(apiKey)).toMatchObject({ balance: 96, reserved: 4 });
  });

  it("creates a new batch for every request without a key", async () => {
    const { apiKey } = await newAccount(100);
    const a = await createBatch(apiKey, { urls: urls(1) });
    const b = await createBatch(apiKey, { urls: urls(1) });
    expect(a.body.batchId).not.toBe(b.body.batchId);
    expect(await getCredits(apiKey)).toMatchObject({ balance: 96, reserved: 4 });
    expect((await listBatches(apiKey)).body.pagination.total).toBe(2);
  });

  it("keeps keys apart between accounts: the same key on two accounts makes two batches", async () => {
    const a = await newAccount(100);
    const b = await newAccount(100);
    const ra = await createBatch(a.apiKey, { urls: urls(1) }, { "idempotency-key": "shared" });
    const rb = await createBatch(b.apiKey, { urls: urls(1) }, { "idempotency-key": "shared" });
    expect(ra.status).toBe(202);
    expect(rb.status).toBe(202);
    expect(rb.body.batchId).not.toBe(ra.body.batchId);
    expect((await getBatch(b.apiKey, rb.body.batchId)).status).toBe(200);
    expect(await getCredits(b.apiKey)).toMatchObject({ balance: 98, reserved: 2 });
  });
});

describe("POST /api/batch/scrape selectors", () => {
  it.each([["a + b"], ["p:has(a)"], ["li:last-child"], ["[[["]])(
    "refuses %s up front, naming the selector's field",
    async (selector) => {
      const { apiKey } = await newAccount(100);
      const res = await createBatch(apiKey, { urls: ["https://example.com/"], selectors: { bad: selector } });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe("VALIDATION_ERROR");
      expect(res.body.message).toMatch(/^selectors\.bad: unsupported CSS selector/);
    },
  );

  it("accepts the selectors HTMLRewriter supports", async () => {
    const { apiKey } = await newAccount(100);
    const res = await createBatch(apiKey, {
      urls: ["https://example.com/"],
      selectors: { a: "h1", b: "div > p.lead", c: "a[href^='https']", d: "li:nth-child(2)" },
    });
    expect(res.status).toBe(202);
  });
});
