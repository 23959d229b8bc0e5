import { exports } from "cloudflare:workers";
import { describe, expect, expectTypeOf, it } from "vitest";
import {
  type Batch,
  BatchScrapeClient,
  BatchScrapeError,
  type CancelResult,
  type CreateBatchInput,
  type Credits,
  type UsageStats,
} from "../../src/client";
import { newAccount } from "../helpers";

function client(apiKey: string) {
  return new BatchScrapeClient({
    baseUrl: "https://api.test",
    apiKey,
    fetch: (request) => exports.default.fetch(request),
  });
}

describe("typed client", () => {
  it("has types derived from the routes' own schemas", () => {
    expectTypeOf<CreateBatchInput>()
      .toHaveProperty("urls")
      .toEqualTypeOf<
        (string | { url: string; customId?: string | undefined; metadata?: Record<string, unknown> | undefined })[]
      >();
    expectTypeOf<CreateBatchInput["output"]>().toEqualTypeOf<"json" | "markdown" | undefined>();
    expectTypeOf<CancelResult>().toEqualTypeOf<{
      status: "cancelled";
      cancelledItems: number;
      creditsRefunded: number;
    }>();
    expectTypeOf<Batch["status"]>().toEqualTypeOf<"pending" | "running" | "completed" | "failed" | "cancelled">();
    expectTypeOf<Credits>().toHaveProperty("balance").toBeNumber();
    expectTypeOf<Batch["items"][number]["error"]>().toEqualTypeOf<string | null>();
    expectTypeOf<UsageStats["data"][number]["credits"]>().toBeNumber();
    // @ts-expect-error: an unknown field is not part of the request type
    const bad: CreateBatchInput = { urls: [], colour: "red" };
    void bad;
  });

  it("creates, reads, cancels and reads credits and the ledger against the real Worker", async () => {
    const { apiKey } = await newAccount(100);
    const c = client(apiKey);
    const created = await c.createBatch(
      { urls: ["https://example.com/a", "https://example.com/b"] },
      { idempotencyKey: "client-1" },
    );
    expect(created).toMatchObject({ status: "queued", total: 2 });
    const replay = await c.createBatch(
      { urls: ["https://example.com/a", "https://example.com/b"] },
      { idempotencyKey: "client-1" },
    );
    expect(replay.batchId).toBe(created.batchId);

    const batch = await c.getBatch(created.batchId, { limit: 1 });
    expect(batch).toMatchObject({ batchId: created.batchId, totalUrls: 2, pendingCount: 2 });
    expect(batch.items).toHaveLength(1);
    expect(batch.nextCursor).not.toBeNull();

    expect(await c.cancelBatch(created.batchId)).toEqual({
      status: "cancelled",
      cancelledItems: 2,
      creditsRefunded: 4,
    });
    expect((await c.listBatches()).jobs[0]).toMatchObject({ uuid: created.batchId, status: "cancelled" });
    expect(await c.getCredits()).toMatchObject({ balance: 100, reserved: 0, refunded: 4 });
    const ledger = await c.getLedger({ limit: 10 });
    expect(ledger.entries.map((e) => e.kind)).toEqual(["refund", "reserve", "grant"]);
    const usage = await c.getUsage("7d");
    expect(usage.data).toHaveLength(7);
    expect(usage.data[6]).toMatchObject({ creditsReserved: 4, creditsRefunded: 4, items: { cancelled: 2 } });
    const all = await c.getBatch(created.batchId);
    expect(all.items.map((i) => [i.status, i.error, i.errorCode])).toEqual([
      ["cancelled", null, null],
      ["cancelled", null, null],
    ]);
  });

  it("throws BatchScrapeError with the API's status and code", async () => {
    const { apiKey } = await newAccount(1);
    const c = client(apiKey);
    const error = await c.createBatch({ urls: ["https://example.com/"] }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BatchScrapeError);
    expect(error).toMatchObject({ status: 403, code: "INSUFFICIENT_CREDITS" });
    const notFound = await c.getBatch("nope").catch((e: unknown) => e);
    expect(notFound).toMatchObject({ status: 404, code: "NOT_FOUND" });
  });
});
