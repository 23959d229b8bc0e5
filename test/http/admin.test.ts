import { describe, expect, it } from "vitest";
import { adminHeaders, call, callJson, getCredits, keyHeaders, newAccount } from "../helpers";
import {
  addKey,
  dumpAccountStorage,
  expectError,
  getJson,
  grant,
  ISO_RE,
  KEY_RE,
  ledger,
  revokeKey,
  secretOf,
  sha256Hex,
  UUID_RE,
} from "./support";

function createAccount(body?: unknown) {
  return callJson("/admin/accounts", {
    method: "POST",
    headers: body === undefined ? { authorization: adminHeaders.authorization } : adminHeaders,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

function describeAccount(accountId: string) {
  return callJson(`/admin/accounts/${accountId}`, { headers: adminHeaders });
}

describe("POST /admin/accounts", () => {
  it("creates an account with its credits and a first key, returned once", async () => {
    const r = await createAccount({ name: "Acme", credits: 250 });
    expect(r.status).toBe(201);
    expect(r.body).toEqual({
      accountId: expect.stringMatching(UUID_RE),
      keyId: expect.stringMatching(/^[0-9a-f]{16}$/),
      apiKey: expect.stringMatching(KEY_RE),
      credits: { balance: 250, reserved: 0, used: 0, refunded: 0, granted: 250 },
    });
    // The key carries its account and key ids.
    expect(r.body.apiKey.startsWith(`bsk_${r.body.accountId.replace(/-/g, "")}_${r.body.keyId}_`)).toBe(true);
  });

  it("issues a key that works on the public API at once", async () => {
    const { apiKey } = (await createAccount({ credits: 40 })).body;
    expect(await getCredits(apiKey)).toEqual({ balance: 40, reserved: 0, used: 0, refunded: 0, granted: 40 });
  });

  it("creates an account with no body: no name and 0 credits", async () => {
    const r = await createAccount();
    expect(r.status).toBe(201);
    expect(r.body.credits).toEqual({ balance: 0, reserved: 0, used: 0, refunded: 0, granted: 0 });
    const d = await describeAccount(r.body.accountId);
    expect(d.body.name).toBeNull();
  });

  it("gives every account its own id and key", async () => {
    const a = (await createAccount({ credits: 1 })).body;
    const b = (await createAccount({ credits: 1 })).body;
    expect(a.accountId).not.toBe(b.accountId);
    expect(a.apiKey).not.toBe(b.apiKey);
  });

  it("stores only the SHA-256 hex hash of the key, never the key or its secret", async () => {
    const { accountId, keyId, apiKey } = await newAccount(10);
    const storage = await dumpAccountStorage(accountId);
    expect(storage.api_keys).toHaveLength(1);
    const row = storage.api_keys![0]!;
    expect(row.key_id).toBe(keyId);
    expect(row.key_hash).toBe(await sha256Hex(apiKey));
    expect(row.key_hash).toMatch(/^[0-9a-f]{64}$/);
    const secret = secretOf(apiKey);
    const everything = JSON.stringify(storage);
    expect(everything).not.toContain(apiKey);
    expect(everything).not.toContain(secret);
  });

  it.each([
    ["negative credits", { credits: -1 }, "credits"],
    ["fractional credits", { credits: 1.5 }, "credits"],
    ["credits as a string", { credits: "10" }, "credits"],
    ["credits over the cap", { credits: 1_000_000_001 }, "credits"],
    ["an empty name", { name: "" }, "name"],
    ["a name that is not a string", { name: 42 }, "name"],
    ["an unknown field", { credits: 5, plan: "gold" }, "plan"],
  ])("refuses %s with 400 VALIDATION_ERROR naming the field", async (_label, body, field) => {
    const r = await createAccount(body);
    expectError(r, 400, "VALIDATION_ERROR");
    expect(r.body.message).toContain(field);
  });
});

describe("GET /admin/accounts/:accountId", () => {
  it("returns the account's name, credits and keys", async () => {
    const { accountId, keyId } = await newAccount(70, "Globex");
    const r = await describeAccount(accountId);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      accountId,
      name: "Globex",
      createdAt: expect.stringMatching(ISO_RE),
      credits: { balance: 70, reserved: 0, used: 0, refunded: 0, granted: 70 },
      keys: [{ keyId, createdAt: expect.stringMatching(ISO_RE), expiresAt: null, revokedAt: null }],
    });
  });

  it("never shows a key or its hash", async () => {
    const { accountId, apiKey } = await newAccount(5);
    const second = await addKey(accountId);
    const r = await call(`/admin/accounts/${accountId}`, { headers: adminHeaders });
    expect(r.status).toBe(200);
    const text = await r.text();
    for (const key of [apiKey, second.apiKey]) {
      expect(text).not.toContain(key);
      expect(text).not.toContain(secretOf(key));
      expect(text).not.toContain(await sha256Hex(key));
    }
    expect(text).not.toMatch(/[0-9a-f]{64}/);
    expect(text).not.toMatch(/"(apiKey|keyHash|key_hash|hash|secret)"/i);
    expect(JSON.parse(text).keys).toHaveLength(2);
  });

  it("answers 404 NOT_FOUND for an account that does not exist", async () => {
    expectError(await describeAccount(crypto.randomUUID()), 404, "NOT_FOUND");
  });

  it("answers 404 NOT_FOUND for a malformed account id", async () => {
    expectError(await describeAccount("not-an-id"), 404, "NOT_FOUND");
  });
});

describe("POST /admin/accounts/:accountId/credits", () => {
  it("grants credits and returns the new balances", async () => {
    const { accountId, apiKey } = await newAccount(100);
    const r = await grant(accountId, 50);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ accountId, credits: { balance: 150, reserved: 0, used: 0, refunded: 0, granted: 150 } });
    expect(await getCredits(apiKey)).toEqual({ balance: 150, reserved: 0, used: 0, refunded: 0, granted: 150 });
  });

  it("replays the same Idempotency-Key and amount without granting twice", async () => {
    const { accountId, apiKey } = await newAccount(100);
    const first = await grant(accountId, 30, "grant-abc");
    const second = await grant(accountId, 30, "grant-abc");
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(second.body).toEqual(first.body);
    expect(first.body.credits).toMatchObject({ balance: 130, granted: 130 });
    expect(await getCredits(apiKey)).toMatchObject({ balance: 130, granted: 130 });
    const grants = (await ledger(apiKey)).body.entries.filter((e: { kind: string }) => e.kind === "grant");
    expect(grants.map((e: { amount: number }) => e.amount)).toEqual([30, 100]);
  });

  it("refuses the same Idempotency-Key with another amount: 422 IDEMPOTENCY_KEY_REUSED, nothing granted", async () => {
    const { accountId, apiKey } = await newAccount(100);
    expect((await grant(accountId, 30, "grant-xyz")).status).toBe(200);
    expectError(await grant(accountId, 31, "grant-xyz"), 422, "IDEMPOTENCY_KEY_REUSED");
    expect(await getCredits(apiKey)).toMatchObject({ balance: 130, granted: 130 });
  });

  it("grants every time without an Idempotency-Key", async () => {
    const { accountId, apiKey } = await newAccount(0);
    await grant(accountId, 10);
    await grant(accountId, 10);
    expect(await getCredits(apiKey)).toMatchObject({ balance: 20, granted: 20 });
  });

  it("keeps Idempotency-Keys apart between accounts", async () => {
    const a = await newAccount(0);
    const b = await newAccount(0);
    expect((await grant(a.accountId, 5, "shared-key")).status).toBe(200);
    const r = await grant(b.accountId, 7, "shared-key");
    expect(r.status).toBe(200);
    expect(await getCredits(b.apiKey)).toMatchObject({ balance: 7, granted: 7 });
  });

  it.each([
    ["a zero amount", { amount: 0 }],
    ["a negative amount", { amount: -5 }],
    ["a fractional amount", { amount: 1.5 }],
    ["an amount as a string", { amount: "10" }],
    ["an amount over the cap", { amount: 1_000_000_001 }],
    ["a missing amount", {}],
  ])("refuses %s with 400 VALIDATION_ERROR naming amount", async (_label, body) => {
    const { accountId, apiKey } = await newAccount(10);
    const r = await callJson(`/admin/accounts/${accountId}/credits`, {
      method: "POST",
      headers: adminHeaders,
      body: JSON.stringify(body),
    });
    expectError(r, 400, "VALIDATION_ERROR");
    expect(r.body.message).toContain("amount");
    expect(await getCredits(apiKey)).toMatchObject({ balance: 10, granted: 10 });
  });

  it("refuses an unknown field with 400 VALIDATION_ERROR naming it", async () => {
    const { accountId } = await newAccount(10);
    const r = await callJson(`/admin/accounts/${accountId}/credits`, {
      method: "POST",
      headers: adminHeaders,
      body: JSON.stringify({ amount: 5, reason: "promo" }),
    });
    expectError(r, 400, "VALIDATION_ERROR");
    expect(r.body.message).toContain("reason");
  });

  it("answers 404 NOT_FOUND for an account that does not exist, and creates nothing", async () => {
    const id = crypto.randomUUID();
    expectError(await grant(id, 5), 404, "NOT_FOUND");
    expectError(await describeAccount(id), 404, "NOT_FOUND");
  });

  it("answers 404 NOT_FOUND for a malformed account id", async () => {
    expectError(await grant("nope", 5), 404, "NOT_FOUND");
  });
});

describe("POST /admin/accounts/:accountId/keys", () => {
  it("creates another key without expiry; old and new keys both work", async () => {
    const { accountId, apiKey } = await newAccount(12);
    const r = await callJson(`/admin/accounts/${accountId}/keys`, {
      method: "POST",
      headers: adminHeaders,
      body: "{}",
    });
    expect(r.status).toBe(201);
    expect(r.body).toEqual({
      keyId: expect.stringMatching(/^[0-9a-f]{16}$/),
      apiKey: expect.stringMatching(KEY_RE),
      expiresAt: null,
    });
    expect(r.body.apiKey).not.toBe(apiKey);
    expect((await getCredits(r.body.apiKey)).balance).toBe(12);
    expect((await getCredits(apiKey)).balance).toBe(12);
  });

  it("creates a key with no body at all", async () => {
    const { accountId } = await newAccount(1);
    const r = await callJson(`/admin/accounts/${accountId}/keys`, {
      method: "POST",
      headers: { authorization: adminHeaders.authorization },
    });
    expect(r.status).toBe(201);
    expect(r.body.expiresAt).toBeNull();
  });

  it("creates a key with a future expiresAt that works until then and is listed with it", async () => {
    const { accountId } = await newAccount(3);
    const expiresAt = new Date(Date.now() + 3_600_000).toISOString();
    const r = await callJson(`/admin/accounts/${accountId}/keys`, {
      method: "POST",
      headers: adminHeaders,
      body: JSON.stringify({ expiresAt }),
    });
    expect(r.status).toBe(201);
    expect(r.body.expiresAt).toBe(expiresAt);
    expect((await getCredits(r.body.apiKey)).balance).toBe(3);
    const keys = (await describeAccount(accountId)).body.keys;
    expect(keys).toContainEqual({
      keyId: r.body.keyId,
      createdAt: expect.stringMatching(ISO_RE),
      expiresAt,
      revokedAt: null,
    });
  });

  it("normalises an expiresAt with a time-zone offset to UTC", async () => {
    const { accountId } = await newAccount(1);
    const r = await callJson(`/admin/accounts/${accountId}/keys`, {
      method: "POST",
      headers: adminHeaders,
      body: JSON.stringify({ expiresAt: "2999-01-01T02:00:00+02:00" }),
    });
    expect(r.status).toBe(201);
    expect(r.body.expiresAt).toBe("2999-01-01T00:00:00.000Z");
  });

  it("stores only the hash of the new key", async () => {
    const { accountId } = await newAccount(1);
    const key = await addKey(accountId);
    const storage = await dumpAccountStorage(accountId);
    const row = storage.api_keys!.find((k) => k.key_id === key.keyId)!;
    expect(row.key_hash).toBe(await sha256Hex(key.apiKey));
    expect(JSON.stringify(storage)).not.toContain(secretOf(key.apiKey));
  });

  it.each([
    ["an expiresAt in the past", { expiresAt: new Date(Date.now() - 60_000).toISOString() }],
    ["an expiresAt that is not a date-time", { expiresAt: "tomorrow" }],
    ["an expiresAt that is a number", { expiresAt: Date.now() + 60_000 }],
  ])("refuses %s with 400 VALIDATION_ERROR and adds no key", async (_label, body) => {
    const { accountId } = await newAccount(1);
    const r = await callJson(`/admin/accounts/${accountId}/keys`, {
      method: "POST",
      headers: adminHeaders,
      body: JSON.stringify(body),
    });
    expectError(r, 400, "VALIDATION_ERROR");
    expect(r.body.message).toContain("expiresAt");
    expect((await describeAccount(accountId)).body.keys).toHaveLength(1);
  });

  it("answers 404 NOT_FOUND for an account that does not exist", async () => {
    const r = await callJson(`/admin/accounts/${crypto.randomUUID()}/keys`, {
      method: "POST",
      headers: adminHeaders,
      body: "{}",
    });
    expectError(r, 404, "NOT_FOUND");
  });
});

describe("DELETE /admin/accounts/:accountId/keys/:keyId", () => {
  it("revokes a key at once: its very next request gets 403, other keys keep working", async () => {
    const { accountId, keyId, apiKey } = await newAccount(9);
    const other = await addKey(accountId);
    expect((await getCredits(apiKey)).balance).toBe(9);

    const r = await callJson(`/admin/accounts/${accountId}/keys/${keyId}`, { method: "DELETE", headers: adminHeaders });
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ keyId, revokedAt: expect.stringMatching(ISO_RE) });

    expectError(await getJson("/api/credits", apiKey), 403, "INVALID_API_KEY");
    expect((await getCredits(other.apiKey)).balance).toBe(9);
  });

  it("shows the revocation time on the account", async () => {
    const { accountId, keyId } = await newAccount(1);
    const r = await callJson(`/admin/accounts/${accountId}/keys/${keyId}`, { method: "DELETE", headers: adminHeaders });
    const keys = (await describeAccount(accountId)).body.keys;
    expect(keys).toEqual([
      { keyId, createdAt: expect.stringMatching(ISO_RE), expiresAt: null, revokedAt: r.body.revokedAt },
    ]);
  });

  it("revokes a key that was added later, leaving the first key working", async () => {
    const { accountId, apiKey } = await newAccount(4);
    const second = await addKey(accountId);
    await revokeKey(accountId, second.keyId);
    expectError(await getJson("/api/credits", second.apiKey), 403, "INVALID_API_KEY");
    expect((await getCredits(apiKey)).balance).toBe(4);
  });

  it("cannot revoke another account's key through this account", async () => {
    const a = await newAccount(1);
    const b = await newAccount(1);
    const r = await callJson(`/admin/accounts/${a.accountId}/keys/${b.keyId}`, {
      method: "DELETE",
      headers: adminHeaders,
    });
    expectError(r, 404, "NOT_FOUND");
    expect((await getCredits(b.apiKey)).balance).toBe(1);
  });

  it("answers 404 NOT_FOUND for a key id the account does not have", async () => {
    const { accountId } = await newAccount(1);
    const r = await callJson(`/admin/accounts/${accountId}/keys/0123456789abcdef`, {
      method: "DELETE",
      headers: adminHeaders,
    });
    expectError(r, 404, "NOT_FOUND");
  });

  it("answers 404 NOT_FOUND for an account that does not exist", async () => {
    const r = await callJson(`/admin/accounts/${crypto.randomUUID()}/keys/0123456789abcdef`, {
      method: "DELETE",
      headers: adminHeaders,
    });
    expectError(r, 404, "NOT_FOUND");
  });
});

describe("admin and public credentials are separate", () => {
  it("does not accept an API key as the admin token", async () => {
    const { accountId, apiKey } = await newAccount(1);
    const r = await callJson(`/admin/accounts/${accountId}`, { headers: { authorization: `Bearer ${apiKey}` } });
    expectError(r, 401, "UNAUTHORIZED");
  });

  it("does not accept the admin token as an API key", async () => {
    const r = await callJson("/api/credits", { headers: keyHeaders("test-admin-token") });
    expectError(r, 403, "INVALID_API_KEY");
  });
});
