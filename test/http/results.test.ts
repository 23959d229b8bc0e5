import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { batchStub, callJson, getBatch, keyHeaders, newAccount, newBatch } from "../helpers";
import { backdateFinish, finishedBatch } from "../ops/support";
import { completeStored, labelledBatch, type Line, ndjson, parseCsv, resultsOf } from "./results-support";
import { expectError } from "./support";

const U = (n: number) => `https://example.com/r/${n}`;

/** Every item of the batch read, page by page, as the results lines should show them. */
async function readAll(apiKey: string, batchId: string) {
  const items: Record<string, any>[] = [];
  let cursor: string | null = null;
  do {
    const r: { body: any } = await callJson(
      `/api/batch/scrape/${batchId}?limit=100${cursor === null ? "" : `&cursor=${cursor}`}`,
      { headers: keyHeaders(apiKey) },
    );
    items.push(...r.body.items);
    cursor = r.body.nextCursor;
  } while (cursor !== null);
  return items;
}

function sameAsRead(line: Line, item: Record<string, any>) {
  expect({
    index: line.index,
    itemId: line.itemId,
    customId: line.customId,
    url: line.url,
    status: line.status,
    error: line.error,
    errorCode: line.errorCode,
    creditsUsed: line.creditsUsed,
    metadata: line.metadata,
  }).toEqual({
    index: item.index,
    itemId: item.uuid,
    customId: item.customId,
    url: item.url,
    status: item.status,
    error: item.error,
    errorCode: item.errorCode,
    creditsUsed: item.creditsUsed,
    metadata: item.metadata,
  });
}

describe("GET /api/batch/scrape/:batchId/results", () => {
  it("one line per item in input order, with ids, after interleaved completions, requeues and a retry", async () => {
    const account = await newAccount(1000);
    const entries = Array.from({ length: 7 }, (_, n) => ({ url: U(n), customId: `row-${n}`, metadata: { n } }));
    const { batchId, itemIds } = await labelledBatch(account, entries);
    const stub = batchStub(batchId);
    const start = async (n: number) => {
      const lease = await stub.startItem(itemIds[n]!);
      if (lease.action !== "run") throw new Error(`item ${n} not started: ${lease.reason}`);
      return lease.attempt;
    };
    // Started out of order; settled in yet another order.
    const a5 = await start(5);
    const a2 = await start(2);
    const a0 = await start(0);
    const a6 = await start(6);
    await stub.completeItem(itemIds[2]!, a2, { inline: 2 });
    await completeStored(batchId, itemIds[3]!, JSON.stringify({ stored: 3 }), "application/json");
    // 5 fails transiently (requeued), then runs again and completes.
    await stub.failItem(itemIds[5]!, a5, { code: "HTTP_503", message: "busy" }, { retryable: true });
    const a5b = await start(5);
    await stub.completeItem(itemIds[5]!, a5b, { inline: 5, attempt: a5b });
    await stub.failItem(itemIds[0]!, a0, { code: "HTTP_404", message: "gone" });
    await stub.failItem(itemIds[6]!, a6, { code: "HTTP_410", message: "gone too" });
    // Retry the failed ones (0 and 6): 0 completes now, 6 stays pending.
    const retried = await callJson(`/api/batch/scrape/${batchId}/retry`, {
      method: "POST",
      headers: keyHeaders(account.apiKey),
    });
    expect(retried.body).toEqual({ status: "queued", retriedCount: 2 });
    await completeStored(batchId, itemIds[0]!, JSON.stringify({ stored: 0 }), "application/json");

    const res = await resultsOf(account.apiKey, batchId);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-ndjson; charset=utf-8");
    expect(res.headers.get("x-batch-complete")).toBe("false");
    const lines = await ndjson(res);
    expect(lines.map((l) => [l.index, l.customId, l.status, l.result])).toEqual([
      [0, "row-0", "completed", { stored: 0 }],
      [1, "row-1", "pending", null],
      [2, "row-2", "completed", { inline: 2 }],
      [3, "row-3", "completed", { stored: 3 }],
      [4, "row-4", "pending", null],
      [5, "row-5", "completed", { inline: 5, attempt: 2 }],
      [6, "row-6", "pending", null],
    ]);
    const read = await readAll(account.apiKey, batchId);
    expect(lines).toHaveLength(read.length);
    for (const [k, line] of lines.entries()) sameAsRead(line, read[k]!);
    expect(lines.map((l) => l.metadata)).toEqual(entries.map((e) => e.metadata));
  });

  it("a failed line carries error (the message) and errorCode as the batch read's item does", async () => {
    const account = await newAccount(100);
    const { batchId, itemIds } = await labelledBatch(account, [U(0), U(1), U(2)]);
    const stub = batchStub(batchId);
    const l0 = await stub.startItem(itemIds[0]!);
    const l1 = await stub.startItem(itemIds[1]!);
    if (l0.action !== "run" || l1.action !== "run") throw new Error("not started");
    await stub.failItem(itemIds[0]!, l0.attempt, { code: "HTTP_404", message: "Not Found" });
    await stub.completeItem(itemIds[1]!, l1.attempt, { ok: 1 });
    const lines = await ndjson(await resultsOf(account.apiKey, batchId));
    // One name per concept: the same keys as the read's items, no `{ code, message }` object.
    expect(Object.keys(lines[0]!)).toEqual([
      "index",
      "itemId",
      "customId",
      "url",
      "status",
      "error",
      "errorCode",
      "creditsUsed",
      "metadata",
      "result",
    ]);
    expect(lines.map((l) => [l.status, l.error, l.errorCode])).toEqual([
      ["failed", "Not Found", "HTTP_404"],
      ["completed", null, null],
      ["pending", null, null],
    ]);
    const read = await readAll(account.apiKey, batchId);
    expect(read[0]).toMatchObject({ error: "Not Found", errorCode: "HTTP_404" });
    for (const [k, line] of lines.entries()) sameAsRead(line, read[k]!);
    const csv = parseCsv(await (await resultsOf(account.apiKey, batchId, "?format=csv")).text());
    expect(csv[1]!.slice(4, 7)).toEqual(["failed", "HTTP_404", "Not Found"]);
  });

  it("pages through a batch larger than one read (input order kept across pages), and filters by status", async () => {
    const account = await newAccount(10_000);
    const { batchId, itemIds } = await newBatch(account.apiKey, 600, { output: "markdown" });
    const stub = batchStub(batchId);
    for (const n of [599, 0, 250, 251, 300]) {
      const lease = await stub.startItem(itemIds[n]!);
      if (lease.action !== "run") throw new Error("not started");
      await stub.completeItem(itemIds[n]!, lease.attempt, `# page ${n}`);
    }
    const lines = await ndjson(await resultsOf(account.apiKey, batchId));
    expect(lines.map((l) => l.index)).toEqual(Array.from({ length: 600 }, (_, n) => n));
    expect(lines.map((l) => l.itemId)).toEqual(itemIds);
    const done = await ndjson(await resultsOf(account.apiKey, batchId, "?status=completed"));
    expect(done.map((l) => [l.index, l.result])).toEqual([0, 250, 251, 300, 599].map((n) => [n, `# page ${n}`]));
    expect(await ndjson(await resultsOf(account.apiKey, batchId, "?status=failed"))).toEqual([]);
  });

  it("reads a Markdown result stored in R2 as text, a JSON one as JSON", async () => {
    const account = await newAccount(100);
    const { batchId, itemIds } = await labelledBatch(account, [U(0)], { output: "markdown" });
    await completeStored(batchId, itemIds[0]!, '# Title\n\nbody, with "quotes"', "text/markdown");
    const [line] = await ndjson(await resultsOf(account.apiKey, batchId));
    expect(line!.result).toBe('# Title\n\nbody, with "quotes"');
  });

  it("after a cancel: cancelled items as cancelled, the running one finishing, the batch marked complete once it has", async () => {
    const account = await newAccount(100);
    const { batchId, itemIds } = await labelledBatch(
      account,
      [0, 1, 2, 3].map((n) => ({ url: U(n), customId: `c${n}` })),
    );
    const stub = batchStub(batchId);
    const lease = await stub.startItem(itemIds[1]!);
    if (lease.action !== "run") throw new Error("not started");
    await callJson(`/api/batch/scrape/${batchId}`, { method: "DELETE", headers: keyHeaders(account.apiKey) });
    const during = await resultsOf(account.apiKey, batchId);
    expect(during.headers.get("x-batch-complete")).toBe("false");
    expect(during.headers.get("x-batch-status")).toBe("cancelled");
    expect((await ndjson(during)).map((l) => l.status)).toEqual(["cancelled", "running", "cancelled", "cancelled"]);
    await stub.completeItem(itemIds[1]!, lease.attempt, { ok: 1 });
    const after = await resultsOf(account.apiKey, batchId);
    expect(after.headers.get("x-batch-complete")).toBe("true");
    const lines = await ndjson(after);
    expect(lines.map((l) => [l.customId, l.status, l.creditsUsed, l.result])).toEqual([
      ["c0", "cancelled", 0, null],
      ["c1", "completed", 2, { ok: 1 }],
      ["c2", "cancelled", 0, null],
      ["c3", "cancelled", 0, null],
    ]);
    const cancelled = await ndjson(await resultsOf(account.apiKey, batchId, "?status=cancelled"));
    expect(cancelled.map((l) => l.customId)).toEqual(["c0", "c2", "c3"]);
    const read = await readAll(account.apiKey, batchId);
    for (const [k, line] of lines.entries()) sameAsRead(line, read[k]!);
  });

  it("CSV: RFC 4180 quoting of commas, quotes, newlines and Unicode; formula cells guarded", async () => {
    const account = await newAccount(100);
    const ids = [
      "plain",
      'with "quotes", and commas',
      "semi;colon 'apos' tail ",
      "日本語 ✓ émoji 🎉",
      '=HYPERLINK("x")',
      "+1",
      "-2",
      "@sum",
      "A",
    ];
    const entries = ids.map((customId, n) => ({
      url: `${U(n)}?a=1,2`,
      customId,
      metadata: { note: `m,"${n}"\r\nnext line` },
    }));
    // A customId has no control characters: line breaks and tabs are tried in metadata, errors and results.
    const { batchId, itemIds } = await labelledBatch(account, entries, { output: "markdown" });
    const stub = batchStub(batchId);
    const l0 = await stub.startItem(itemIds[0]!);
    const l8 = await stub.startItem(itemIds[8]!);
    if (l0.action !== "run" || l8.action !== "run") throw new Error("not started");
    await stub.completeItem(itemIds[0]!, l0.attempt, '# T\n\n"q", =1\r\n');
    await stub.failItem(itemIds[8]!, l8.attempt, { code: "EXTRACTION_FAILED", message: '\tcell, "x"\nline 2' });

    const res = await resultsOf(account.apiKey, batchId, "?format=csv");
    expect(res.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    expect(res.headers.get("content-disposition")).toBe(`attachment; filename="batch-${batchId}.csv"`);
    const text = await res.text();
    expect(text.charCodeAt(0)).not.toBe(0xfeff);
    const rows = parseCsv(text);
    expect(rows[0]).toEqual([
      "index",
      "itemId",
      "customId",
      "url",
      "status",
      "errorCode",
      "errorMessage",
      "creditsUsed",
      "metadata",
      "result",
    ]);
    expect(rows).toHaveLength(ids.length + 1);
    const guarded = (s: string) => (/^[=+\-@\t\r]/.test(s) ? `'${s}` : s);
    rows.slice(1).forEach((row, n) => {
      expect(row).toHaveLength(10);
      expect(row[0]).toBe(String(n));
      expect(row[1]).toBe(itemIds[n]);
      expect(row[2]).toBe(guarded(ids[n]!));
      expect(row[3]).toBe(`${U(n)}?a=1,2`);
      expect(JSON.parse(row[8]!)).toEqual({ note: `m,"${n}"\r\nnext line` });
    });
    expect(rows[1]!.slice(4)).toEqual([
      "completed",
      "",
      "",
      "1",
      '{"note":"m,\\"0\\"\\r\\nnext line"}',
      JSON.stringify('# T\n\n"q", =1\r\n'),
    ]);
    expect(rows[9]!.slice(4, 8)).toEqual(["failed", "EXTRACTION_FAILED", '\'\tcell, "x"\nline 2', "0"]);
    expect(rows[5]![2]).toBe('\'=HYPERLINK("x")');
    expect(rows[4]![2]).toBe("日本語 ✓ émoji 🎉");
  });

  it("refuses an unknown format or status, naming the field", async () => {
    const account = await newAccount(100);
    const { batchId } = await newBatch(account.apiKey, 1);
    const bad = await callJson(`/api/batch/scrape/${batchId}/results?format=xml`, {
      headers: keyHeaders(account.apiKey),
    });
    expectError(bad, 400, "VALIDATION_ERROR");
    expect(bad.body.message).toMatch(/^format: /);
    const status = await callJson(`/api/batch/scrape/${batchId}/results?status=pending`, {
      headers: keyHeaders(account.apiKey),
    });
    expectError(status, 400, "VALIDATION_ERROR");
    expect(status.body.message).toMatch(/^status: /);
  });

  it("another account's batch, an unknown id and a malformed id are 404 NOT_FOUND", async () => {
    const owner = await newAccount(100);
    const other = await newAccount(100);
    const { batchId } = await newBatch(owner.apiKey, 1);
    for (const [key, id] of [
      [other.apiKey, batchId],
      [owner.apiKey, crypto.randomUUID()],
      [owner.apiKey, "not-a-uuid"],
    ] as const) {
      expectError(await callJson(`/api/batch/scrape/${id}/results`, { headers: keyHeaders(key) }), 404, "NOT_FOUND");
      expectError(await callJson(`/api/batch/scrape/${id}/receipt`, { headers: keyHeaders(key) }), 404, "NOT_FOUND");
    }
  });

  it("an expired batch is 410 BATCH_EXPIRED on every read of it, to its owner only", async () => {
    const owner = await newAccount(100);
    const other = await newAccount(100);
    const { batchId, itemIds } = await finishedBatch(owner.apiKey, 2);
    await backdateFinish(batchId, 400);
    await runDurableObjectAlarm(batchStub(batchId));
    for (const path of [
      `/api/batch/scrape/${batchId}`,
      `/api/batch/scrape/${batchId}/results`,
      `/api/batch/scrape/${batchId}/results?format=csv`,
      `/api/batch/scrape/${batchId}/receipt`,
      `/api/batch/scrape/${batchId}/items/${itemIds[0]}/result`,
    ]) {
      expectError(await callJson(path, { headers: keyHeaders(owner.apiKey) }), 410, "BATCH_EXPIRED");
      expectError(await callJson(path, { headers: keyHeaders(other.apiKey) }), 404, "NOT_FOUND");
    }
    expectError(await getBatch(owner.apiKey, batchId), 410, "BATCH_EXPIRED");
  });

  it("a client that stops reading mid-way cancels the stream cleanly", async () => {
    const account = await newAccount(10_000);
    const { batchId } = await newBatch(account.apiKey, 1000, { output: "markdown" });
    const res = await resultsOf(account.apiKey, batchId);
    const reader = res.body!.getReader();
    const { value } = await reader.read();
    expect(new TextDecoder().decode(value).split("\n")[0]).toContain('"index":0');
    await reader.cancel();
    // The batch is untouched and reads as before.
    expect((await getBatch(account.apiKey, batchId)).status).toBe(200);
  });
});
