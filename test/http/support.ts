/** Small helpers shared by the HTTP tests (the general ones live in test/helpers.ts). */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { accountStub, adminHeaders, callJson, keyHeaders } from "../helpers";

export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const ISO_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
export const KEY_RE = /^bsk_[0-9a-f]{32}_[0-9a-f]{16}_[A-Za-z0-9_-]{43}_[0-9a-f]{32}$/;

/** The 43-character secret before a key's MAC (it may itself contain "_"). */
export function secretOf(apiKey: string): string {
  const m = /^bsk_[0-9a-f]{32}_[0-9a-f]{16}_([A-Za-z0-9_-]{43})_[0-9a-f]{32}$/.exec(apiKey);
  if (!m) throw new Error(`not an API key: ${apiKey}`);
  return m[1]!;
}

type Answer = { status: number; body: any; res: Response };

/**
 * The error envelope, exactly: `{ status: "error", message, code, requestId }` with the
 * given HTTP status, a JSON content type, a non-empty message, the response's own
 * x-request-id as requestId, and no stack trace anywhere.
 */
export function expectError(r: Answer, status: number, code: string): void {
  expect({ status: r.status, code: r.body?.code }).toEqual({ status, code });
  const requestId = r.res.headers.get("x-request-id");
  expect(requestId).toMatch(/^[A-Za-z0-9][A-Za-z0-9._:-]{7,127}$/);
  expect(r.body).toEqual({ status: "error", message: expect.any(String), code, requestId });
  expect(r.body.message.length).toBeGreaterThan(0);
  expect(r.res.headers.get("content-type") ?? "").toMatch(/^application\/json/);
  expectNoStack(r.body);
}

/** An error body without its requestId (unique per response), to compare two answers. */
export function sansRequestId(body: { requestId?: unknown }): Record<string, unknown> {
  expect(typeof body.requestId).toBe("string");
  const { requestId: _, ...rest } = body;
  return rest;
}

/** No "    at " stack frame lines, and no source paths, anywhere in a body. */
export function expectNoStack(body: unknown): void {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  expect(text).not.toMatch(/ {4}at /);
  expect(text).not.toMatch(/\\n\s*at /);
  expect(text).not.toMatch(/\.ts:\d+/);
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "");
}

export function randomHex(bytes: number): string {
  return hex(crypto.getRandomValues(new Uint8Array(bytes)));
}

/** `bsk_<account>_<key id>_<random secret>`: a key without its MAC segment. */
function unsignedKey(accountId: string, keyId: string): string {
  return `bsk_${accountId.replace(/-/g, "")}_${keyId}_${base64url(crypto.getRandomValues(new Uint8Array(32)))}`;
}

/** The MAC the Worker expects (src/account/keys.ts): HMAC-SHA256 under the test secret, first 16 bytes, hex. */
export async function macOf(signed: string, secret: string = env.API_KEY_MAC_SECRET!): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return hex(new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(signed)), 0, 16));
}

/**
 * A key that was never issued but whose MAC is right (as if made with the server's secret):
 * it passes the Worker's check and is refused by the account object.
 */
export async function neverIssuedKey(
  accountId: string = crypto.randomUUID(),
  keyId: string = randomHex(8),
): Promise<string> {
  const signed = unsignedKey(accountId, keyId);
  const key = `${signed}_${await macOf(signed)}`;
  expect(key).toMatch(KEY_RE);
  return key;
}

/** A made-up key: well-formed, but its MAC is wrong, so the Worker refuses it without asking any object. */
export function badMacKey(accountId: string = crypto.randomUUID(), keyId: string = randomHex(8)): string {
  const key = `${unsignedKey(accountId, keyId)}_${randomHex(16)}`;
  expect(key).toMatch(KEY_RE);
  return key;
}

export async function sha256Hex(text: string): Promise<string> {
  return hex(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))));
}

/** POST /admin/accounts/:id/keys; returns the new key. */
/** Fills the account's key copies up to MAX_KEY_COPIES (10,000) for `keyId`: it lends no more. */
export async function fillKeyCopies(accountId: string, keyId: string): Promise<void> {
  await runInDurableObject(accountStub(accountId), (_o, state) => {
    state.storage.sql.exec(
      `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
       INSERT INTO key_copies (key_id, batch_id, lent_at) SELECT ?, 'filler-' || i, 0 FROM n`,
      keyId,
    );
  });
}

export async function addKey(
  accountId: string,
  body: Record<string, unknown> = {},
): Promise<{ keyId: string; apiKey: string; expiresAt: string | null }> {
  const r = await callJson(`/admin/accounts/${accountId}/keys`, {
    method: "POST",
    headers: adminHeaders,
    body: JSON.stringify(body),
  });
  expect(r.status).toBe(201);
  return r.body;
}

export async function revokeKey(accountId: string, keyId: string): Promise<void> {
  const r = await callJson(`/admin/accounts/${accountId}/keys/${keyId}`, { method: "DELETE", headers: adminHeaders });
  expect(r.status).toBe(200);
}

/** Back-dates a key's expiry in storage, so it is already expired. */
export async function expireKey(accountId: string, keyId: string): Promise<void> {
  await runInDurableObject(accountStub(accountId), (_obj, state) => {
    state.storage.sql.exec("UPDATE api_keys SET expires_at = ? WHERE key_id = ?", Date.now() - 1000, keyId);
  });
}

/** Every row of every table of an account object, for looking for things that must not be stored. */
export async function dumpAccountStorage(accountId: string): Promise<Record<string, Record<string, unknown>[]>> {
  return runInDurableObject(accountStub(accountId), (_obj, state) => {
    const sql = state.storage.sql;
    const tables = sql
      .exec<{ name: string }>(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'",
      )
      .toArray()
      .map((t) => t.name);
    return Object.fromEntries(
      tables.map((t) => [t, sql.exec(`SELECT * FROM "${t}"`).toArray() as Record<string, unknown>[]]),
    );
  });
}

export function getJson(path: string, apiKey: string): Promise<Answer> {
  return callJson(path, { headers: keyHeaders(apiKey) });
}

export function listBatches(apiKey: string, query = ""): Promise<Answer> {
  return callJson(`/api/batch/scrape${query}`, { headers: keyHeaders(apiKey) });
}

export function ledger(apiKey: string, query = ""): Promise<Answer> {
  return callJson(`/api/credits/ledger${query}`, { headers: keyHeaders(apiKey) });
}

export function grant(accountId: string, amount: number, idempotencyKey?: string): Promise<Answer> {
  return callJson(`/admin/accounts/${accountId}/credits`, {
    method: "POST",
    headers: idempotencyKey === undefined ? adminHeaders : { ...adminHeaders, "idempotency-key": idempotencyKey },
    body: JSON.stringify({ amount }),
  });
}
