import { afterEach, describe, expect, it, vi } from "vitest";
import { eventsFor } from "../../src/webhooks/events";
import { batchStub, createBatch, getBatch, newAccount, runInBatch } from "../helpers";
import { labelledBatch } from "./results-support";
import { expectError } from "./support";

const U = (n: number) => `https://example.com/p/${n}`;

afterEach(() => vi.restoreAllMocks());

describe("urls entries with your own ids and metadata", () => {
  it("echoes customId, metadata and index on batch reads (strings and objects mixed)", async () => {
    const account = await newAccount(100);
    const { batchId } = await labelledBatch(account, [
      U(0),
      { url: U(1), customId: "row-1", metadata: { sku: "A-1", tags: ["x"], n: 2 } },
      { url: U(2), customId: "ünïcødé ✓ 行" },
      { url: U(3), metadata: { only: true } },
    ]);
    const r = await getBatch(account.apiKey, batchId);
    expect(r.status).toBe(200);
    expect(r.body.items.map((i: Record<string, unknown>) => [i.index, i.url, i.customId, i.metadata])).toEqual([
      [0, U(0), null, null],
      [1, U(1), "row-1", { sku: "A-1", tags: ["x"], n: 2 }],
      [2, U(2), "ünïcødé ✓ 行", null],
      [3, U(3), null, { only: true }],
    ]);
    // Paged reads carry them too.
    const page2 = await getBatch(account.apiKey, `${batchId}?limit=2&cursor=${r.body.items[1].index}`);
    expect(page2.body.items[0]).toMatchObject({ index: 2, customId: "ünïcødé ✓ 行" });
  });

  it.each([
    [
      [U(0), { url: U(1), customId: "a" }, { url: U(2), customId: "b" }, { url: U(3), customId: "a" }],
      "urls[3].customId: duplicates urls[1]",
    ],
    [[{ url: U(0), customId: "x".repeat(129) }], "urls[0].customId: must be at most 128 characters"],
    [[{ url: U(0), customId: "" }], "urls[0].customId: must not be empty"],
    [[U(0), { url: U(1), customId: "tab\there" }], "urls[1].customId: must not contain control characters"],
    [[{ url: U(0), customId: "\ud800x" }], "urls[0].customId: must be valid Unicode text"],
    [[{ url: U(0), metadata: { big: "x".repeat(1100) } }], "urls[0].metadata: must be at most 1024 bytes as JSON"],
    [[{ url: U(0), metadata: { a: { b: { c: { d: { e: 1 } } } } } }], "urls[0].metadata: must be nested at most 4"],
    [[{ url: U(0), metadata: [1, 2] }], "urls[0].metadata: "],
    [[{ url: U(0), metadata: "text" }], "urls[0].metadata: "],
    [[{ url: "ftp://example.com/x", customId: "a" }], "urls[0].url: must use http or https"],
    [[{ url: U(0), colour: "red" }], 'Unknown field "urls[0].colour"'],
    [[{ customId: "a" }], "urls[0].url: "],
    [[42], "urls[0]: must be a URL, or an object { url, customId?, metadata? }"],
    [[{ url: "https://localhost/x" }], "urls[0].url: https://localhost/x can never be fetched"],
  ])("refuses %j with a message naming the field", async (entries, message) => {
    const { apiKey } = await newAccount(100);
    const r = await createBatch(apiKey, { urls: entries });
    expectError(r, 400, "VALIDATION_ERROR");
    expect(r.body.message).toContain(message);
  });

  it("counts metadata bytes as UTF-8 and accepts exactly the cap", async () => {
    const { apiKey } = await newAccount(100);
    // {"k":"…"} is 8 bytes of JSON around the value.
    const ok = await createBatch(apiKey, { urls: [{ url: U(0), metadata: { k: "x".repeat(1016) } }] });
    expect(ok.status).toBe(202);
    const over = await createBatch(apiKey, { urls: [{ url: U(0), metadata: { k: `${"x".repeat(1015)}é` } }] });
    expectError(over, 400, "VALIDATION_ERROR");
  });

  it("carries them in item.completed and item.failed webhook events", async () => {
    vi.spyOn(globalThis, "fetch").mockResolvedValue(new Response("ok")); // the webhook receiver
    const account = await newAccount(100);
    const { batchId, itemIds } = await labelledBatch(
      account,
      [
        { url: U(0), customId: "ok-row", metadata: { n: 1 } },
        { url: U(1), customId: "bad-row" },
      ],
      { webhookUrl: "https://hooks.example/x" },
    );
    const stub = batchStub(batchId);
    const a = await stub.startItem(itemIds[0]!);
    const b = await stub.startItem(itemIds[1]!);
    if (a.action !== "run" || b.action !== "run") throw new Error("not started");
    await stub.completeItem(itemIds[0]!, a.attempt, { t: 1 });
    await stub.failItem(itemIds[1]!, b.attempt, { code: "HTTP_404", message: "gone" });
    // The events wait in the batch's outbox to the account (the account signs and delivers them).
    const events = await runInBatch(batchId, (_o, s) =>
      s.storage.sql
        .exec<{ event: string }>("SELECT event FROM outbox WHERE kind = 'webhook' ORDER BY seq")
        .toArray()
        .map((r) => JSON.parse(r.event).event as { type: string; data: Record<string, unknown> }),
    );
    const items = events.filter((e) => e.type.startsWith("item."));
    expect(items.map((e) => [e.type, e.data.itemId, e.data.customId, e.data.metadata])).toEqual([
      ["item.completed", itemIds[0], "ok-row", { n: 1 }],
      ["item.failed", itemIds[1], "bad-row", null],
    ]);
  });

  it("eventsFor: an item event without labels says null, not undefined", () => {
    const side = {
      batch_id: "b",
      status: "running" as const,
      version: 2,
      total: 1,
      credits_per_item: 1,
      credits_used: 0,
      started_at: 1,
      finished_at: null,
      pending: 0,
      running: 1,
      completed: 0,
      failed: 0,
      cancelled: 0,
    };
    const [event] = eventsFor(side, { ...side, version: 3 }, { id: "i", url: "u", outcome: "completed", error: null });
    expect(event!.data).toMatchObject({ customId: null, metadata: null });
  });
});
