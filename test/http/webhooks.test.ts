import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { verify } from "../../src/webhooks/signature";
import { accountStub, batchStub, callJson, createBatch, drainOutbox, keyHeaders, newAccount, urls } from "../helpers";

const HOOK = "https://hooks.example/receive";

interface Received {
  id: string | null;
  body: string;
  signature: string | null;
  timestamp: string | null;
}

/** A webhook receiver behind a stubbed fetch: answers with `statuses` in turn (then 200). */
function receiver(statuses: number[] = []) {
  const received: Received[] = [];
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    const headers = request.headers;
    received.push({ id: headers.get("x-webhook-id"), body: await request.text(), signature: headers.get("x-webhook-signature"), timestamp: headers.get("x-webhook-timestamp") });
    return new Response("ok", { status: statuses.shift() ?? 200 });
  });
  return received;
}

/** Delivers what the batch sent: its outbox to the account, then the account's due webhooks. */
async function deliver(accountId: string, batchId: string) {
  await drainOutbox(batchId);
  await runInDurableObject(accountStub(accountId), (_o, s) => s.storage.sql.exec("UPDATE webhook_deliveries SET next_attempt_at = ? WHERE state = 'pending'", Date.now() - 1));
  await runDurableObjectAlarm(accountStub(accountId));
}

async function deliveries(apiKey: string) {
  return (await callJson("/api/webhooks/deliveries?limit=100", { headers: keyHeaders(apiKey) })).body.deliveries as { eventId: string; type: string; state: string; attempts: number; lastStatus: number | null }[];
}

afterEach(() => vi.restoreAllMocks());

describe("webhooks", () => {
  it("the seed's cancel story sends batch.started, item.completed x2 and ONE batch.cancelled with the final counts, all signed", async () => {
    const received = receiver();
    const { apiKey, accountId } = await newAccount(100);
    const created = await createBatch(apiKey, { urls: urls(10), maxConcurrency: 2, webhookUrl: HOOK });
    expect(created.status).toBe(202);
    const batchId: string = created.body.batchId;
    const page = await callJson(`/api/batch/scrape/${batchId}?limit=2`, { headers: keyHeaders(apiKey) });
    const stub = batchStub(batchId);
    const leases = [];
    for (const item of page.body.items) {
      const r = await stub.startItem(item.uuid);
      if (r.action === "run") leases.push(r);
    }
    await callJson(`/api/batch/scrape/${batchId}`, { method: "DELETE", headers: keyHeaders(apiKey) });
    for (const l of leases) await stub.completeItem(l.itemId, l.attempt, {});
    await deliver(accountId, batchId);

    const types = received.map((r) => JSON.parse(r.body).type);
    expect(types.sort()).toEqual(["batch.cancelled", "batch.started", "item.completed", "item.completed"]);
    const cancelled = received.map((r) => JSON.parse(r.body)).find((e) => e.type === "batch.cancelled");
    expect(cancelled.data).toMatchObject({
      status: "cancelled",
      cancelledItems: 8,
      creditsRefunded: 16,
      creditsUsed: 4,
      counts: { total: 10, pending: 0, running: 0, completed: 2, failed: 0, cancelled: 8 },
    });

    const { body: s } = await callJson("/api/webhooks/secret", { headers: keyHeaders(apiKey) });
    expect(s.secret).toMatch(/^whsec_/);
    for (const r of received) {
      expect(r.id).toBe(JSON.parse(r.body).id);
      expect(await verify(s.secret, { signature: r.signature, timestamp: r.timestamp }, r.body)).toBe(true);
      expect(await verify(s.secret, { signature: r.signature, timestamp: r.timestamp }, r.body.replace("cancel", "cancel "))).toBe(false);
    }
    // Delivering again sends nothing more.
    await deliver(accountId, batchId);
    expect(received).toHaveLength(4);
    expect((await deliveries(apiKey)).every((d) => d.state === "delivered" && d.attempts === 1)).toBe(true);
  });

  it("a target that fails twice then succeeds: exactly one delivery, recorded as success after 3 attempts", async () => {
    const received = receiver([500, 503]);
    const { apiKey, accountId } = await newAccount(100);
    const created = await createBatch(apiKey, { urls: urls(1), webhookUrl: HOOK });
    const batchId: string = created.body.batchId;
    await callJson(`/api/batch/scrape/${batchId}`, { method: "DELETE", headers: keyHeaders(apiKey) });
    for (let i = 0; i < 3; i++) await deliver(accountId, batchId);
    const list = await deliveries(apiKey);
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({ type: "batch.cancelled", state: "delivered", attempts: 3, lastStatus: 200 });
    expect(received.map((r) => r.id)).toEqual([list[0]!.eventId, list[0]!.eventId, list[0]!.eventId]);
    await deliver(accountId, batchId);
    expect(received).toHaveLength(3);
  });

  it("checks the stored URL again before every delivery: one the guard refuses is never called", async () => {
    const received = receiver();
    const { apiKey, accountId } = await newAccount(100);
    const created = await createBatch(apiKey, { urls: urls(1), webhookUrl: HOOK });
    const batchId: string = created.body.batchId;
    await callJson(`/api/batch/scrape/${batchId}`, { method: "DELETE", headers: keyHeaders(apiKey) });
    await drainOutbox(batchId);
    // As if stored before the guard knew the range.
    await runInDurableObject(accountStub(accountId), (_o, s) => s.storage.sql.exec("UPDATE webhook_deliveries SET url = ?", "https://[::ffff:0:a9fe:a9fe]/hook"));
    await deliver(accountId, batchId);
    expect(received).toHaveLength(0);
    expect((await deliveries(apiKey))[0]).toMatchObject({ state: "failed", attempts: 1 });
    const errors = await runInDurableObject(accountStub(accountId), (_o, s) => s.storage.sql.exec<{ last_error: string }>("SELECT last_error FROM webhook_deliveries").toArray());
    expect(errors.map((e) => e.last_error)).toEqual([expect.stringMatching(/^blocked target: IPv4-translated address ::ffff:0:a9fe:a9fe /)]);
  });

  it("gives up after 24 hours of failures, and says so", async () => {
    receiver([500, 500, 500]);
    const { apiKey, accountId } = await newAccount(100);
    const created = await createBatch(apiKey, { urls: urls(1), webhookUrl: HOOK });
    await callJson(`/api/batch/scrape/${created.body.batchId}`, { method: "DELETE", headers: keyHeaders(apiKey) });
    await deliver(accountId, created.body.batchId);
    expect((await deliveries(apiKey))[0]).toMatchObject({ state: "pending", attempts: 1, lastStatus: 500 });
    await runInDurableObject(accountStub(accountId), (_o, s) => s.storage.sql.exec("UPDATE webhook_deliveries SET created_at = ?", Date.now() - 25 * 3600_000));
    await deliver(accountId, created.body.batchId);
    expect((await deliveries(apiKey))[0]).toMatchObject({ state: "failed", attempts: 2 });
  });

  it.each([
    ["http://hooks.example/x", "webhookUrl: must use https"],
    ["https://127.0.0.1/x", "webhookUrl: loopback"],
    ["https://169.254.169.254/latest", "webhookUrl: "],
    ["https://[::ffff:0:a9fe:a9fe]/hook", "webhookUrl: IPv4-translated address ::ffff:0:a9fe:a9fe is not allowed"],
    ["https://[64:ff9b::10.0.0.1]/hook", "webhookUrl: NAT64 address 64:ff9b::a00:1 embeds private address 10.0.0.1"],
    ["ftp://hooks.example/x", "webhookUrl: "],
  ])("refuses webhookUrl %s", async (url, message) => {
    const { apiKey } = await newAccount(100);
    const res = await createBatch(apiKey, { urls: urls(1), webhookUrl: url });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe("VALIDATION_ERROR");
    expect(res.body.message.startsWith(message)).toBe(true);
  });
});
