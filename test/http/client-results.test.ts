import { exports } from "cloudflare:workers";
import { describe, expect, expectTypeOf, it } from "vitest";
import { BatchScrapeClient, BatchScrapeError, type Receipt, type ResultLine } from "../../src/client";
import { batchStub, newAccount } from "../helpers";
import { labelledBatch } from "./results-support";

function client(apiKey: string, fetch = (request: Request) => exports.default.fetch(request)) {
  return new BatchScrapeClient({ baseUrl: "https://api.test", apiKey, fetch });
}

/** The Worker's answer re-sent `size` bytes at a time: lines (and UTF-8 characters) split across chunks. */
function rechunked(size: number) {
  return async (request: Request) => {
    const res = await exports.default.fetch(request);
    const bytes = new Uint8Array(await res.arrayBuffer());
    let at = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (at >= bytes.length) return controller.close();
        controller.enqueue(bytes.slice(at, at + size));
        at += size;
      },
    });
    return new Response(body, { status: res.status, headers: res.headers });
  };
}

describe("typed client: results() and receipt()", () => {
  it("has the line and receipt types of the routes' schemas", () => {
    expectTypeOf<ResultLine["customId"]>().toEqualTypeOf<string | null>();
    expectTypeOf<ResultLine["index"]>().toBeNumber();
    // As on the batch read's items: the message as a string, the code beside it.
    expectTypeOf<ResultLine["error"]>().toEqualTypeOf<string | null>();
    expectTypeOf<ResultLine["errorCode"]>().toEqualTypeOf<string | null>();
    expectTypeOf<Receipt["held"]>().toBeNumber();
    expectTypeOf<Receipt["entries"][number]["idempotencyKey"]>().toBeString();
  });

  it("iterates every line in order, parsed incrementally from a stream cut anywhere", async () => {
    const account = await newAccount(100);
    const entries = ["ä", "b", "日本"].map((id, n) => ({
      url: `https://example.com/c/${n}`,
      customId: `id-${id}`,
      metadata: { n },
    }));
    const { batchId, itemIds } = await labelledBatch(account, entries);
    const stub = batchStub(batchId);
    const lease = await stub.startItem(itemIds[1]!);
    if (lease.action !== "run") throw new Error("not started");
    await stub.completeItem(itemIds[1]!, lease.attempt, { title: "✓ done" });

    for (const size of [1, 3, 7, 4096]) {
      const lines: ResultLine[] = [];
      for await (const line of client(account.apiKey, rechunked(size)).results(batchId)) lines.push(line);
      expect(lines.map((l) => [l.index, l.customId, l.status, l.result, l.metadata])).toEqual([
        [0, "id-ä", "pending", null, { n: 0 }],
        [1, "id-b", "completed", { title: "✓ done" }, { n: 1 }],
        [2, "id-日本", "pending", null, { n: 2 }],
      ]);
    }
    const done: ResultLine[] = [];
    for await (const line of client(account.apiKey).results(batchId, { status: "completed" })) done.push(line);
    expect(done.map((l) => l.itemId)).toEqual([itemIds[1]]);
  });

  it("gives a failed line's error as the message and errorCode as its code", async () => {
    const account = await newAccount(100);
    const { batchId, itemIds } = await labelledBatch(account, ["https://example.com/f/0"]);
    const lease = await batchStub(batchId).startItem(itemIds[0]!);
    if (lease.action !== "run") throw new Error("not started");
    await batchStub(batchId).failItem(itemIds[0]!, lease.attempt, { code: "HTTP_500", message: "Server Error" });
    const lines: ResultLine[] = [];
    for await (const line of client(account.apiKey).results(batchId)) lines.push(line);
    expect(lines.map((l) => [l.status, l.error, l.errorCode])).toEqual([["failed", "Server Error", "HTTP_500"]]);
  });

  it("stops the download when the loop is left early", async () => {
    const account = await newAccount(10_000);
    const { batchId } = await labelledBatch(
      account,
      Array.from({ length: 600 }, (_, n) => `https://example.com/many/${n}`),
      { output: "markdown" },
    );
    let cancelled = false;
    const watching = async (request: Request) => {
      const res = await exports.default.fetch(request);
      const reader = res.body!.getReader();
      const watched = new ReadableStream<Uint8Array>({
        async pull(controller) {
          const { value, done } = await reader.read();
          if (done) controller.close();
          else controller.enqueue(value);
        },
        cancel(reason) {
          cancelled = true;
          return reader.cancel(reason);
        },
      });
      return new Response(watched, { status: res.status, headers: res.headers });
    };
    let seen = 0;
    for await (const line of client(account.apiKey, watching).results(batchId)) {
      seen++;
      if (line.index === 4) break;
    }
    expect(seen).toBe(5);
    expect(cancelled).toBe(true);
  });

  it("receipt(): totals and rows; an unknown batch is a BatchScrapeError 404", async () => {
    const account = await newAccount(100);
    const { batchId, itemIds } = await labelledBatch(account, ["https://example.com/r/0", "https://example.com/r/1"]);
    const stub = batchStub(batchId);
    const lease = await stub.startItem(itemIds[0]!);
    if (lease.action !== "run") throw new Error("not started");
    await stub.completeItem(itemIds[0]!, lease.attempt, { ok: true });
    const c = client(account.apiKey);
    await c.cancelBatch(batchId);
    const receipt = await c.receipt(batchId);
    expect(receipt).toMatchObject({ reserved: 4, refunded: 2, held: 0, balanced: true });
    // The charge may still be in the batch's outbox: the receipt says so rather than guess.
    expect(receipt.charged === 2 || receipt.settled === false).toBe(true);
    const error = await c.receipt(crypto.randomUUID()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BatchScrapeError);
    expect(error).toMatchObject({ status: 404, code: "NOT_FOUND" });
  });
});
