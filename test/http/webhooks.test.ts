import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createApp } from "../../src/http/app";
import { v1Entries, verify } from "../../src/webhooks/signature";
import { accountStub, batchStub, callJson, createBatch, drainOutbox, keyHeaders, newAccount, urls } from "../helpers";
import { dumpAccountStorage, expectError } from "./support";

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
    received.push({
      id: headers.get("x-webhook-id"),
      body: await request.text(),
      signature: headers.get("x-webhook-signature"),
      timestamp: headers.get("x-webhook-timestamp"),
    });
    return new Response("ok", { status: statuses.shift() ?? 200 });
  });
  return received;
}

/** Delivers what the batch sent: its outbox to the account, then the account's due webhooks. */
async function deliver(accountId: string, batchId: string) {
  await drainOutbox(batchId);
  await runInDurableObject(accountStub(accountId), (_o, s) =>
    s.storage.sql.exec("UPDATE webhook_deliveries SET next_attempt_at = ? WHERE state = 'pending'", Date.now() - 1),
  );
  await runDurableObjectAlarm(accountStub(accountId));
}

async function deliveries(apiKey: string) {
  return (await callJson("/api/webhooks/deliveries?limit=100", { headers: keyHeaders(apiKey) })).body.deliveries as {
    eventId: string;
    type: string;
    state: string;
    attempts: number;
    lastStatus: number | null;
  }[];
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
      expect(
        await verify(s.secret, { signature: r.signature, timestamp: r.timestamp }, r.body.replace("cancel", "cancel ")),
      ).toBe(false);
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
    await runInDurableObject(accountStub(accountId), (_o, s) =>
      s.storage.sql.exec("UPDATE webhook_deliveries SET url = ?", "https://[::ffff:0:a9fe:a9fe]/hook"),
    );
    await deliver(accountId, batchId);
    expect(received).toHaveLength(0);
    expect((await deliveries(apiKey))[0]).toMatchObject({ state: "failed", attempts: 1 });
    const errors = await runInDurableObject(accountStub(accountId), (_o, s) =>
      s.storage.sql.exec<{ last_error: string }>("SELECT last_error FROM webhook_deliveries").toArray(),
    );
    expect(errors.map((e) => e.last_error)).toEqual([
      expect.stringMatching(/^blocked target: IPv4-translated address ::ffff:0:a9fe:a9fe /),
    ]);
  });

  it("gives up after 24 hours of failures, and says so", async () => {
    receiver([500, 500, 500]);
    const { apiKey, accountId } = await newAccount(100);
    const created = await createBatch(apiKey, { urls: urls(1), webhookUrl: HOOK });
    await callJson(`/api/batch/scrape/${created.body.batchId}`, { method: "DELETE", headers: keyHeaders(apiKey) });
    await deliver(accountId, created.body.batchId);
    expect((await deliveries(apiKey))[0]).toMatchObject({ state: "pending", attempts: 1, lastStatus: 500 });
    await runInDurableObject(accountStub(accountId), (_o, s) =>
      s.storage.sql.exec("UPDATE webhook_deliveries SET created_at = ?", Date.now() - 25 * 3600_000),
    );
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

const DAY_MS = 24 * 3600_000;

async function currentSecret(apiKey: string): Promise<{ secret: string; previousSecretExpiresAt: string | null }> {
  const r = await callJson("/api/webhooks/secret", { headers: keyHeaders(apiKey) });
  expect(r.status).toBe(200);
  expect(r.res.headers.get("cache-control")).toBe("no-store");
  return r.body;
}

/** POST rotate; with no body, no content-type either (the default overlap). */
function rotate(apiKey: string, body?: unknown) {
  if (body === undefined)
    return callJson("/api/webhooks/secret/rotate", { method: "POST", headers: { "x-api-key": apiKey } });
  return callJson("/api/webhooks/secret/rotate", {
    method: "POST",
    headers: keyHeaders(apiKey),
    body: JSON.stringify(body),
  });
}

async function rotated(
  apiKey: string,
  body?: unknown,
): Promise<{ secret: string; scheme: string; previousSecretExpiresAt: string | null }> {
  const r = await rotate(apiKey, body);
  expect(r.status).toBe(200);
  expect(r.res.headers.get("cache-control")).toBe("no-store");
  return r.body;
}

/** A cancelled one-URL batch: one batch.cancelled event queued for the webhook. */
async function queueOneEvent(apiKey: string): Promise<string> {
  const created = await createBatch(apiKey, { urls: urls(1), webhookUrl: HOOK });
  expect(created.status).toBe(202);
  await callJson(`/api/batch/scrape/${created.body.batchId}`, { method: "DELETE", headers: keyHeaders(apiKey) });
  return created.body.batchId;
}

/** Which of `secrets` each entry of a delivery's signature header verifies with (by index; -1: none). */
async function signers(r: Received, secrets: string[]): Promise<number[]> {
  const out: number[] = [];
  for (const entry of v1Entries(r.signature ?? "")) {
    let who = -1;
    for (const [i, s] of secrets.entries()) {
      if (await verify(s, { signature: entry, timestamp: r.timestamp }, r.body)) who = i;
    }
    out.push(who);
  }
  return out;
}

function previousSecretRow(accountId: string) {
  return runInDurableObject(accountStub(accountId), (_o, s) =>
    s.storage.sql
      .exec<{ p: string | null; until: number | null }>(
        "SELECT webhook_previous_secret AS p, webhook_previous_until AS until FROM account",
      )
      .one(),
  );
}

describe("webhook secret rotation", () => {
  it("GET shows the current secret on every call; POST rotate returns a new one each time, and GET follows it", async () => {
    const { apiKey } = await newAccount(10);
    const s0 = await currentSecret(apiKey);
    expect(s0).toEqual({
      secret: expect.stringMatching(/^whsec_[A-Za-z0-9_-]{43}$/),
      scheme: "v1",
      previousSecretExpiresAt: null,
    });
    expect((await currentSecret(apiKey)).secret).toBe(s0.secret);

    const before = Date.now();
    const r1 = await rotated(apiKey);
    const after = Date.now();
    expect(r1.secret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(r1.secret).not.toBe(s0.secret);
    expect(r1.scheme).toBe("v1");
    // Default overlap: 24 h from the rotation.
    const until = Date.parse(r1.previousSecretExpiresAt!);
    expect(until).toBeGreaterThanOrEqual(before + DAY_MS);
    expect(until).toBeLessThanOrEqual(after + DAY_MS);
    expect(await currentSecret(apiKey)).toEqual({
      secret: r1.secret,
      scheme: "v1",
      previousSecretExpiresAt: r1.previousSecretExpiresAt,
    });

    const r2 = await rotated(apiKey, { overlapSeconds: 60 });
    expect(new Set([s0.secret, r1.secret, r2.secret]).size).toBe(3);
    expect((await currentSecret(apiKey)).secret).toBe(r2.secret);
  });

  it("a delivery queued before the rotation is signed at send time: old only, then new and old in the overlap, then new only", async () => {
    const received = receiver([500, 500]);
    const { apiKey, accountId } = await newAccount(100);
    const { secret: oldSecret } = await currentSecret(apiKey);
    const batchId = await queueOneEvent(apiKey);

    await deliver(accountId, batchId);
    expect(received).toHaveLength(1);
    expect(await signers(received[0]!, [oldSecret])).toEqual([0]);

    const { secret: newSecret } = await rotated(apiKey);
    await deliver(accountId, batchId);
    expect(received).toHaveLength(2);
    expect(received[1]!.signature).toMatch(/^v1=[0-9a-f]{64},v1=[0-9a-f]{64}$/);
    // Each entry verifies with its own secret only: the new one first.
    expect(await signers(received[1]!, [newSecret, oldSecret])).toEqual([0, 1]);
    expect(await verify(newSecret, received[1]!, received[1]!.body)).toBe(true);
    expect(await verify(oldSecret, received[1]!, received[1]!.body)).toBe(true);
    expect(await verify(oldSecret, received[1]!, received[1]!.body.replace("cancel", "cancel "))).toBe(false);

    // The overlap ends (back-dated, not waited for): the next attempt carries the new signature only.
    await runInDurableObject(accountStub(accountId), (_o, s) =>
      s.storage.sql.exec("UPDATE account SET webhook_previous_until = ?", Date.now() - 1),
    );
    // Over by the clock, before any alarm has wiped it.
    expect(await currentSecret(apiKey)).toMatchObject({ secret: newSecret, previousSecretExpiresAt: null });
    await deliver(accountId, batchId);
    expect(received).toHaveLength(3);
    expect(received.map((r) => r.id)).toEqual([received[0]!.id, received[0]!.id, received[0]!.id]);
    expect(await signers(received[2]!, [newSecret, oldSecret])).toEqual([0]);
    expect(await verify(oldSecret, received[2]!, received[2]!.body)).toBe(false);
  });

  it("the alarm is armed for the end of the overlap and wipes the old secret then (at most one old secret is stored)", async () => {
    const { apiKey, accountId } = await newAccount(10);
    const { secret: s0 } = await currentSecret(apiKey);
    const r1 = await rotated(apiKey, { overlapSeconds: 3600 });
    const until = Date.parse(r1.previousSecretExpiresAt!);
    expect(await previousSecretRow(accountId)).toEqual({ p: s0, until });
    expect(await runInDurableObject(accountStub(accountId), (_o, s) => s.storage.getAlarm())).toBe(until);

    // The alarm before the end keeps it; the alarm at the end wipes it.
    await runDurableObjectAlarm(accountStub(accountId));
    expect(await previousSecretRow(accountId)).toEqual({ p: s0, until });
    await runInDurableObject(accountStub(accountId), (_o, s) => {
      s.storage.sql.exec("UPDATE account SET webhook_previous_until = ?", Date.now() - 1);
      return s.storage.setAlarm(Date.now() - 1);
    });
    expect(await runDurableObjectAlarm(accountStub(accountId))).toBe(true);
    expect(await previousSecretRow(accountId)).toEqual({ p: null, until: null });
    expect(JSON.stringify(await dumpAccountStorage(accountId))).not.toContain(s0);
  });

  it("rotating again during the overlap ends the oldest secret at once", async () => {
    const received = receiver();
    const { apiKey, accountId } = await newAccount(100);
    const { secret: s0 } = await currentSecret(apiKey);
    const { secret: s1 } = await rotated(apiKey);
    const r2 = await rotated(apiKey, { overlapSeconds: 600 });
    await deliver(accountId, await queueOneEvent(apiKey));
    expect(received).toHaveLength(1);
    expect(await signers(received[0]!, [r2.secret, s1, s0])).toEqual([0, 1]);
    expect(await verify(s0, received[0]!, received[0]!.body)).toBe(false);
    expect(await previousSecretRow(accountId)).toMatchObject({ p: s1 });
  });

  it("overlapSeconds 0 stops the old secret at once", async () => {
    const received = receiver();
    const { apiKey, accountId } = await newAccount(100);
    const { secret: s0 } = await currentSecret(apiKey);
    const r1 = await rotated(apiKey, { overlapSeconds: 0 });
    expect(r1.previousSecretExpiresAt).toBeNull();
    await deliver(accountId, await queueOneEvent(apiKey));
    expect(await signers(received[0]!, [r1.secret, s0])).toEqual([0]);
    expect(await previousSecretRow(accountId)).toEqual({ p: null, until: null });
  });

  it("one account's rotation changes nothing for another", async () => {
    const received = receiver();
    const a = await newAccount(100);
    const b = await newAccount(100);
    const { secret: a0 } = await currentSecret(a.apiKey);
    const { secret: b0 } = await currentSecret(b.apiKey);
    const { secret: a1 } = await rotated(a.apiKey);
    expect(await currentSecret(b.apiKey)).toEqual({ secret: b0, scheme: "v1", previousSecretExpiresAt: null });
    await deliver(b.accountId, await queueOneEvent(b.apiKey));
    await deliver(a.accountId, await queueOneEvent(a.apiKey));
    expect(received).toHaveLength(2);
    const [toB, toA] = received as [Received, Received];
    expect(await signers(toB, [b0, a0, a1])).toEqual([0]);
    expect(await signers(toA, [a1, a0, b0])).toEqual([0, 1]);
  });

  it.each([
    [{ overlapSeconds: -1 }, "overlapSeconds: must be at least 0"],
    [{ overlapSeconds: 604_801 }, "overlapSeconds: must be at most 604800"],
    [{ overlapSeconds: 1.5 }, "overlapSeconds: must be a whole number"],
    [{ overlapSeconds: "60" }, "overlapSeconds: "],
    [{ overlap: 60 }, 'Unknown field "overlap"'],
  ])("refuses %j with 400, leaving the secret as it was", async (body, message) => {
    const { apiKey } = await newAccount(10);
    const { secret } = await currentSecret(apiKey);
    const r = await rotate(apiKey, body);
    expectError(r, 400, "VALIDATION_ERROR");
    expect(r.body.message.startsWith(message)).toBe(true);
    expect(await currentSecret(apiKey)).toEqual({ secret, scheme: "v1", previousSecretExpiresAt: null });
  });

  it("refuses a body that is not JSON with 415, and an unknown key with 403", async () => {
    const { apiKey } = await newAccount(10);
    const text = await callJson("/api/webhooks/secret/rotate", {
      method: "POST",
      headers: { "x-api-key": apiKey, "content-type": "text/plain" },
      body: "overlapSeconds=0",
    });
    expectError(text, 415, "UNSUPPORTED_MEDIA_TYPE");
    expectError(await rotate(`${apiKey.slice(0, -1)}${apiKey.endsWith("A") ? "B" : "A"}`), 403, "INVALID_API_KEY");
  });

  it("is rate limited per key by WEBHOOK_SECRET_LIMITER: 429 with Retry-After, the secret unchanged", async () => {
    const { apiKey, keyId } = await newAccount(10);
    const { secret } = await currentSecret(apiKey);
    const keys: string[] = [];
    const limiter = { limit: async ({ key }: { key: string }) => (keys.push(key), { success: false }) };
    const res = await createApp().request(
      "/api/webhooks/secret/rotate",
      { method: "POST", headers: keyHeaders(apiKey) },
      { ...env, WEBHOOK_SECRET_LIMITER: limiter },
    );
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("60");
    expect(await res.json()).toMatchObject({ status: "error", code: "RATE_LIMITED" });
    expect(keys).toEqual([keyId]);
    expect((await currentSecret(apiKey)).secret).toBe(secret);
  });
});
