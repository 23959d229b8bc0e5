import { describe, expect, it } from "vitest";
import { createBatch, getBatch, getCredits, keyHeaders, callJson, newAccount, newBatch, urls } from "../helpers";
import { expectError, getJson, grant, ISO_RE, ledger, listBatches, sansRequestId, UUID_RE } from "./support";

/** Every item of a batch, following nextCursor page by page. */
async function allPages(apiKey: string, batchId: string, limit: number) {
  const pages: { uuid: string; url: string }[][] = [];
  let cursor: string | null = null;
  do {
    const q: string = `?limit=${limit}${cursor === null ? "" : `&cursor=${encodeURIComponent(cursor)}`}`;
    const r = await getJson(`/api/batch/scrape/${batchId}${q}`, apiKey);
    expect(r.status).toBe(200);
    pages.push(r.body.items);
    cursor = r.body.nextCursor;
    if (pages.length > 100) throw new Error("paging does not end");
  } while (cursor !== null);
  return pages;
}

describe("GET /api/batch/scrape/:batchId", () => {
  it("returns a new batch with all its counters and items", async () => {
    const { apiKey } = await newAccount(100);
    const list = urls(3);
    const { body: created } = await createBatch(apiKey, { urls: list });
    const r = await getBatch(apiKey, created.batchId);
    expect(r.status).toBe(200);
    const item = (url: string) => ({
      uuid: expect.stringMatching(UUID_RE),
      url,
      status: "pending",
      jobId: null,
      result: null,
      error: null,
      errorCode: null,
      creditsUsed: 0,
      attempts: 0,
      startedAt: null,
      finishedAt: null,
      screenshotUrl: null,
    });
    // Every field of the contract, with its value (other fields may be added over time).
    expect(r.body).toMatchObject({
      batchId: created.batchId,
      status: "pending",
      output: "json",
      maxConcurrency: 5,
      totalUrls: 3,
      pendingCount: 3,
      runningCount: 0,
      completedCount: 0,
      failedCount: 0,
      cancelledCount: 0,
      creditsPerItem: 2,
      creditsReserved: 6,
      creditsUsed: 0,
      creditsRefunded: 0,
      createdAt: expect.stringMatching(ISO_RE),
      startedAt: null,
      cancelledAt: null,
      finishedAt: null,
      items: list.map(item),
      nextCursor: null,
    });
    for (const i of r.body.items) {
      expect(Object.keys(i)).toEqual(
        expect.arrayContaining([
          "uuid",
          "url",
          "status",
          "result",
          "error",
          "creditsUsed",
          "attempts",
          "startedAt",
          "finishedAt",
        ]),
      );
    }
    expect(new Set(r.body.items.map((i: { uuid: string }) => i.uuid)).size).toBe(3);
    expect(Math.abs(Date.parse(r.body.createdAt) - Date.now())).toBeLessThan(60_000);
  });

  it.each([60, 150])(
    "answers all %i items, in order, with nextCursor null, when neither limit nor cursor is given",
    async (n) => {
      const { apiKey } = await newAccount(400);
      const { batchId } = (await createBatch(apiKey, { urls: urls(n), output: "markdown" })).body;
      const r = await getBatch(apiKey, batchId);
      expect(r.body.items.map((i: { url: string }) => i.url)).toEqual(urls(n));
      expect(r.body.nextCursor).toBeNull();
    },
  );

  it("with a cursor but no limit, pages 50 at a time", async () => {
    const { apiKey } = await newAccount(200);
    const { batchId } = (await createBatch(apiKey, { urls: urls(120), output: "markdown" })).body;
    const first = await getJson(`/api/batch/scrape/${batchId}?limit=10`, apiKey);
    const second = await getJson(`/api/batch/scrape/${batchId}?cursor=${first.body.nextCursor}`, apiKey);
    expect(second.body.items.map((i: { url: string }) => i.url)).toEqual(urls(120).slice(10, 60));
    expect(second.body.nextCursor).toEqual(expect.any(String));
  });

  it("returns a page of 50 items with limit=50, then the rest", async () => {
    const { apiKey } = await newAccount(200);
    const { batchId } = (await createBatch(apiKey, { urls: urls(60) })).body;
    const first = await getJson(`/api/batch/scrape/${batchId}?limit=50`, apiKey);
    expect(first.body.items).toHaveLength(50);
    expect(first.body.nextCursor).toEqual(expect.any(String));
    const second = await getJson(`/api/batch/scrape/${batchId}?cursor=${first.body.nextCursor}`, apiKey);
    expect(second.body.items.map((i: { url: string }) => i.url)).toEqual(urls(60).slice(50));
    expect(second.body.nextCursor).toBeNull();
    // The batch fields are on every page.
    expect(second.body).toMatchObject({ batchId, totalUrls: 60, pendingCount: 60 });
  });

  it.each([1, 3, 7, 100])("pages through every item exactly once, in order, with limit %i", async (limit) => {
    const { apiKey } = await newAccount(100);
    const list = urls(7);
    const { batchId } = (await createBatch(apiKey, { urls: list, output: "markdown" })).body;
    const pages = await allPages(apiKey, batchId, limit);
    expect(pages.map((p) => p.length)).toEqual(
      Array.from({ length: Math.ceil(7 / limit) }, (_, i) => Math.min(limit, 7 - i * limit)),
    );
    const items = pages.flat();
    expect(items.map((i) => i.url)).toEqual(list);
    expect(new Set(items.map((i) => i.uuid)).size).toBe(7);
  });

  it("ends with nextCursor null when the last page is exactly full", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId } = (await createBatch(apiKey, { urls: urls(4) })).body;
    const pages = await allPages(apiKey, batchId, 2);
    expect(pages.map((p) => p.length)).toEqual([2, 2]);
  });

  it("serves 100 items on one page with limit=100", async () => {
    const { apiKey } = await newAccount(300);
    const { batchId } = (await createBatch(apiKey, { urls: urls(120), output: "markdown" })).body;
    const r = await getJson(`/api/batch/scrape/${batchId}?limit=100`, apiKey);
    expect(r.body.items).toHaveLength(100);
    expect(r.body.nextCursor).not.toBeNull();
  });

  it.each([
    ["limit=0", "limit"],
    ["limit=101", "limit"],
    ["limit=-1", "limit"],
    ["limit=1.5", "limit"],
    ["limit=abc", "limit"],
    ["limit=1e1", "limit"],
    ["limit=0x10", "limit"],
    ["limit=%2010", "limit"],
    ["cursor=abc", "cursor"],
    ["cursor=-1", "cursor"],
    ["cursor=1.5", "cursor"],
    ["cursor=", "cursor"],
  ])("refuses ?%s with 400 VALIDATION_ERROR", async (query, field) => {
    const { apiKey } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 2);
    const r = await getJson(`/api/batch/scrape/${batchId}?${query}`, apiKey);
    expectError(r, 400, "VALIDATION_ERROR");
    expect(r.body.message).toContain(field);
  });

  it("answers 404 NOT_FOUND, with the same body, for an unknown id, a malformed id and another account's batch", async () => {
    const owner = await newAccount(100);
    const other = await newAccount(100);
    const { batchId } = await newBatch(owner.apiKey, 2);
    const unknown = await getBatch(other.apiKey, crypto.randomUUID());
    const malformed = await getBatch(other.apiKey, "not-a-uuid");
    const foreign = await getBatch(other.apiKey, batchId);
    expectError(unknown, 404, "NOT_FOUND");
    expectError(malformed, 404, "NOT_FOUND");
    expectError(foreign, 404, "NOT_FOUND");
    expect(sansRequestId(malformed.body)).toEqual(sansRequestId(unknown.body));
    expect(sansRequestId(foreign.body)).toEqual(sansRequestId(unknown.body));
    expect(JSON.stringify(foreign.body)).not.toContain(batchId);
    // The owner still sees it.
    expect((await getBatch(owner.apiKey, batchId)).status).toBe(200);
  });

  it("does not leak another account's batch through paging parameters either", async () => {
    const owner = await newAccount(100);
    const other = await newAccount(100);
    const { batchId } = await newBatch(owner.apiKey, 3);
    expectError(await getJson(`/api/batch/scrape/${batchId}?limit=1&cursor=0`, other.apiKey), 404, "NOT_FOUND");
  });
});

describe("GET /api/batch/scrape", () => {
  it("lists a batch with its summary fields", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId } = (await createBatch(apiKey, { urls: urls(3) })).body;
    const r = await listBatches(apiKey);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      jobs: [
        {
          uuid: batchId,
          status: "pending",
          totalUrls: 3,
          completedCount: 0,
          failedCount: 0,
          outputFormat: "json",
          scrapingChannel: "api",
          createdAt: expect.stringMatching(ISO_RE),
          finishedAt: null,
        },
      ],
      pagination: { page: 1, limit: expect.any(Number), total: 1, totalPages: 1 },
    });
  });

  it("answers an empty list for an account without batches", async () => {
    const { apiKey } = await newAccount(100);
    const r = await listBatches(apiKey, "?limit=10");
    expect(r.body).toEqual({ jobs: [], pagination: { page: 1, limit: 10, total: 0, totalPages: 0 } });
  });

  it("lists newest first", async () => {
    const { apiKey } = await newAccount(100);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      ids.push((await createBatch(apiKey, { urls: urls(1) })).body.batchId);
      await new Promise((resolve) => setTimeout(resolve, 3));
    }
    const r = await listBatches(apiKey);
    expect(r.body.jobs.map((j: { uuid: string }) => j.uuid)).toEqual([...ids].reverse());
  });

  it("lists newest first even when batches are created back to back", async () => {
    const { apiKey } = await newAccount(100);
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push((await createBatch(apiKey, { urls: urls(1) })).body.batchId);
    const r = await listBatches(apiKey);
    expect(r.body.jobs.map((j: { uuid: string }) => j.uuid)).toEqual([...ids].reverse());
  });

  it("pages: limit and page select the right slice, totals are right, and every batch appears once", async () => {
    const { apiKey } = await newAccount(100);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      ids.push((await createBatch(apiKey, { urls: urls(1) })).body.batchId);
      await new Promise((resolve) => setTimeout(resolve, 3));
    }
    const newestFirst = [...ids].reverse();
    const seen: string[] = [];
    for (const page of [1, 2, 3]) {
      const r = await listBatches(apiKey, `?page=${page}&limit=2`);
      expect(r.status).toBe(200);
      expect(r.body.pagination).toEqual({ page, limit: 2, total: 5, totalPages: 3 });
      seen.push(...r.body.jobs.map((j: { uuid: string }) => j.uuid));
    }
    expect(seen).toEqual(newestFirst);
    const beyond = await listBatches(apiKey, "?page=4&limit=2");
    expect(beyond.body).toEqual({ jobs: [], pagination: { page: 4, limit: 2, total: 5, totalPages: 3 } });
  });

  it("accepts limit=50", async () => {
    const { apiKey } = await newAccount(100);
    await newBatch(apiKey, 1);
    const r = await listBatches(apiKey, "?limit=50");
    expect(r.status).toBe(200);
    expect(r.body.pagination).toEqual({ page: 1, limit: 50, total: 1, totalPages: 1 });
  });

  it.each([
    ["limit=51", "limit"],
    ["limit=0", "limit"],
    ["limit=abc", "limit"],
    ["page=0", "page"],
    ["page=-1", "page"],
    ["page=1.5", "page"],
    ["page=abc", "page"],
    ["page=1e1", "page"],
    ["limit=2e1", "limit"],
  ])("refuses ?%s with 400 VALIDATION_ERROR", async (query, field) => {
    const { apiKey } = await newAccount(100);
    const r = await listBatches(apiKey, `?${query}`);
    expectError(r, 400, "VALIDATION_ERROR");
    expect(r.body.message).toContain(field);
  });

  it("lists only the caller's batches", async () => {
    const a = await newAccount(100);
    const b = await newAccount(100);
    const a1 = (await newBatch(a.apiKey, 1)).batchId;
    const b1 = (await newBatch(b.apiKey, 2)).batchId;
    const a2 = (await newBatch(a.apiKey, 3)).batchId;
    const la = await listBatches(a.apiKey);
    const lb = await listBatches(b.apiKey);
    expect(la.body.pagination.total).toBe(2);
    expect(la.body.jobs.map((j: { uuid: string }) => j.uuid).sort()).toEqual([a1, a2].sort());
    expect(lb.body.pagination.total).toBe(1);
    expect(lb.body.jobs.map((j: { uuid: string }) => j.uuid)).toEqual([b1]);
  });

  it("shows a cancelled batch with its status", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 2);
    const cancel = await callJson(`/api/batch/scrape/${batchId}`, { method: "DELETE", headers: keyHeaders(apiKey) });
    expect(cancel.status).toBe(200);
    const job = (await listBatches(apiKey)).body.jobs[0];
    expect(job).toMatchObject({ uuid: batchId, status: "cancelled", totalUrls: 2, completedCount: 0, failedCount: 0 });
    expect(job.finishedAt).toMatch(ISO_RE);
  });
});

describe("GET /api/credits", () => {
  it("returns exactly the balances of a new account", async () => {
    const { apiKey } = await newAccount(1000);
    const r = await getJson("/api/credits", apiKey);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ balance: 1000, reserved: 0, used: 0, refunded: 0, granted: 1000 });
  });

  it("moves a batch's price from balance to reserved", async () => {
    const { apiKey } = await newAccount(1000);
    await newBatch(apiKey, 3);
    await newBatch(apiKey, 4, { output: "markdown" });
    expect(await getCredits(apiKey)).toEqual({ balance: 990, reserved: 10, used: 0, refunded: 0, granted: 1000 });
  });

  it("adds admin grants to balance and granted", async () => {
    const { accountId, apiKey } = await newAccount(1000);
    await newBatch(apiKey, 3);
    await grant(accountId, 50);
    expect(await getCredits(apiKey)).toEqual({ balance: 1044, reserved: 6, used: 0, refunded: 0, granted: 1050 });
  });

  it("shows a cancel's refund", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 5);
    await callJson(`/api/batch/scrape/${batchId}`, { method: "DELETE", headers: keyHeaders(apiKey) });
    expect(await getCredits(apiKey)).toEqual({ balance: 100, reserved: 0, used: 0, refunded: 10, granted: 100 });
  });

  it("keeps accounts apart", async () => {
    const a = await newAccount(100);
    const b = await newAccount(7);
    await newBatch(a.apiKey, 10);
    expect(await getCredits(b.apiKey)).toEqual({ balance: 7, reserved: 0, used: 0, refunded: 0, granted: 7 });
  });
});

describe("GET /api/credits/ledger", () => {
  it("has a grant and a reserve entry, newest first, after opening with credits and one batch", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 3);
    const r = await ledger(apiKey);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      entries: [
        {
          id: expect.any(Number),
          kind: "reserve",
          amount: 6,
          batchId,
          itemId: null,
          note: expect.any(String),
          idempotencyKey: expect.any(String),
          balanceAfter: 94,
          reservedAfter: 6,
          createdAt: expect.stringMatching(ISO_RE),
        },
        {
          id: expect.any(Number),
          kind: "grant",
          amount: 100,
          batchId: null,
          itemId: null,
          note: expect.any(String),
          idempotencyKey: expect.any(String),
          balanceAfter: 100,
          reservedAfter: 0,
          createdAt: expect.stringMatching(ISO_RE),
        },
      ],
      nextCursor: null,
    });
    expect(r.body.entries[0].id).toBeGreaterThan(r.body.entries[1].id);
  });

  it("is empty for an account opened with no credits", async () => {
    const { apiKey } = await newAccount(0);
    expect((await ledger(apiKey)).body).toEqual({ entries: [], nextCursor: null });
  });

  it("records a cancel's refund with the batch id", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 5);
    await callJson(`/api/batch/scrape/${batchId}`, { method: "DELETE", headers: keyHeaders(apiKey) });
    const entries = (await ledger(apiKey)).body.entries;
    expect(entries.map((e: { kind: string; amount: number }) => [e.kind, e.amount])).toEqual([
      ["refund", 10],
      ["reserve", 10],
      ["grant", 100],
    ]);
    expect(entries[0]).toMatchObject({ batchId, balanceAfter: 100, reservedAfter: 0 });
  });

  it("pages newest first through every entry exactly once", async () => {
    const { accountId, apiKey } = await newAccount(1);
    for (let amount = 2; amount <= 7; amount++) await grant(accountId, amount);
    const amounts: number[] = [];
    const ids: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r: { status: number; body: any } = await ledger(
        apiKey,
        `?limit=3${cursor === null ? "" : `&cursor=${cursor}`}`,
      );
      expect(r.status).toBe(200);
      expect(r.body.entries.length).toBeLessThanOrEqual(3);
      amounts.push(...r.body.entries.map((e: { amount: number }) => e.amount));
      ids.push(...r.body.entries.map((e: { id: number }) => e.id));
      cursor = r.body.nextCursor;
      pages++;
    } while (cursor !== null && pages < 10);
    expect(pages).toBeLessThanOrEqual(3);
    expect(amounts).toEqual([7, 6, 5, 4, 3, 2, 1]);
    expect(new Set(ids).size).toBe(7);
    expect([...ids].sort((a, b) => b - a)).toEqual(ids);
  });

  it("keeps balanceAfter consistent along the ledger", async () => {
    const { accountId, apiKey } = await newAccount(10);
    await grant(accountId, 5);
    await newBatch(apiKey, 2);
    const entries = (await ledger(apiKey)).body.entries;
    expect(
      entries.map((e: { balanceAfter: number; reservedAfter: number }) => [e.balanceAfter, e.reservedAfter]),
    ).toEqual([
      [11, 4],
      [15, 0],
      [10, 0],
    ]);
  });

  it("keeps accounts apart", async () => {
    const a = await newAccount(100);
    const b = await newAccount(5);
    await newBatch(a.apiKey, 2);
    const entries = (await ledger(b.apiKey)).body.entries;
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ kind: "grant", amount: 5, batchId: null });
  });

  it.each([
    ["limit=0", "limit"],
    ["limit=101", "limit"],
    ["limit=abc", "limit"],
    ["cursor=abc", "cursor"],
    ["cursor=-5", "cursor"],
  ])("refuses ?%s with 400 VALIDATION_ERROR", async (query, field) => {
    const { apiKey } = await newAccount(10);
    const r = await ledger(apiKey, `?${query}`);
    expectError(r, 400, "VALIDATION_ERROR");
    expect(r.body.message).toContain(field);
  });

  it("accepts limit=100", async () => {
    const { apiKey } = await newAccount(10);
    const r = await ledger(apiKey, "?limit=100");
    expect(r.status).toBe(200);
    expect(r.body.entries).toHaveLength(1);
  });
});
