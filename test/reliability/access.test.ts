/**
 * Access, completing test/http/auth.test.ts: every secured operation of GET /openapi.json
 * (so routes added later are covered too) against no key, an unknown, a revoked and an
 * expired key; every admin operation against a missing or wrong token; another account's
 * key on every route; and the constant-time comparison under both checks.
 */
import { beforeAll, describe, expect, it, vi } from "vitest";
import { hashesEqual } from "../../src/account/keys";
import {
  adminHeaders,
  batchStub,
  call,
  callJson,
  drainOutbox,
  getBatch,
  getCredits,
  keyHeaders,
  newAccount,
  newBatch,
} from "../helpers";
import { addKey, badMacKey, expectNoStack, expireKey, neverIssuedKey, revokeKey } from "../http/support";

interface Op {
  method: string;
  template: string;
  kind: "key" | "admin";
  body: boolean;
  /** Errors in this API's envelope (other surfaces, like the SerpWow one, have their own). */
  ownEnvelope: boolean;
  /** A WebSocket (documents 426 for a plain request): asked with upgrade headers, so it gets past that check. */
  upgrade: boolean;
  /** Takes the key as `Authorization: Bearer` (the Firecrawl surface): a bearer admin token is a wrong key there. */
  bearerKey: boolean;
}

interface Owner {
  accountId: string;
  apiKey: string;
  keyId: string;
  batchId: string;
  itemId: string;
}

type Spec = {
  security?: Record<string, unknown>[];
  requestBody?: unknown;
  responses: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }>;
};

let ops: Op[];
let owner: Owner;

function fill(op: Op, o: Owner): string {
  const values: Record<string, string> = {
    batchId: o.batchId,
    itemId: o.itemId,
    accountId: o.accountId,
    keyId: o.keyId,
  };
  return op.template.replace(/\{(\w+)\}/g, (_, name: string) => values[name] ?? name);
}

function bodyFor(op: Op): string | undefined {
  if (!op.body) return op.method === "POST" ? "{}" : undefined;
  if (op.template.endsWith("/credits")) return '{"amount":1}';
  if (op.template === "/api/batch/scrape") return JSON.stringify({ urls: ["https://example.com/"] });
  return "{}";
}

async function ask(op: Op, headers: Record<string, string>, o: Owner = owner) {
  const upgrade: Record<string, string> = op.upgrade
    ? {
        upgrade: "websocket",
        connection: "Upgrade",
        "sec-websocket-version": "13",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      }
    : {};
  const res = await call(fill(op, o), {
    method: op.method,
    headers: { "content-type": "application/json", ...upgrade, ...headers },
    body: bodyFor(op),
  });
  // A socket that opened (it must not, in these tests) is closed at once.
  res.webSocket?.accept();
  res.webSocket?.close();
  const text = await res.text();
  expectNoStack(text);
  let body: { code?: string } | undefined;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, code: body?.code, text };
}

/** The owner's books and batch, to compare before and after a matrix. */
async function ownerState() {
  await drainOutbox(owner.batchId);
  const batch = (await getBatch(owner.apiKey, owner.batchId)).body;
  return {
    credits: await getCredits(owner.apiKey),
    status: batch.status,
    pending: batch.pendingCount,
    completed: batch.completedCount,
  };
}

beforeAll(async () => {
  const account = await newAccount(100, "owner");
  const { batchId, itemIds } = await newBatch(account.apiKey, 3);
  const [itemId] = itemIds as [string];
  const lease = await batchStub(batchId).startItem(itemId);
  if (lease.action !== "run") throw new Error(lease.reason);
  await batchStub(batchId).completeItem(
    itemId,
    lease.attempt,
    { ok: true },
    { resultKey: `results/${batchId}/${itemId}` },
  );
  owner = { accountId: account.accountId, apiKey: account.apiKey, keyId: account.keyId, batchId, itemId };

  const doc = (await callJson("/openapi.json")).body as { paths: Record<string, Record<string, Spec>> };
  ops = Object.entries(doc.paths).flatMap(([template, methods]) =>
    Object.entries(methods).flatMap(([method, spec]): Op[] => {
      const schemes = (spec.security ?? []).flatMap((s) => Object.keys(s));
      if (schemes.length === 0) return []; // public: health, the document itself
      const refs = Object.entries(spec.responses)
        .filter(([s]) => Number(s) >= 400)
        .map(([, r]) => r.content?.["application/json"]?.schema?.$ref);
      return [
        {
          method: method.toUpperCase(),
          template,
          kind: schemes.includes("AdminToken") ? "admin" : "key",
          body: spec.requestBody !== undefined,
          ownEnvelope: refs.every((ref) => ref === undefined || ref === "#/components/schemas/Error"),
          upgrade: "426" in spec.responses,
          bearerKey: schemes.includes("ApiKeyBearer"),
        },
      ];
    }),
  );
});

describe("every secured operation of the OpenAPI document", () => {
  it("the document lists key and admin operations (so the matrices below are not empty)", () => {
    expect(ops.filter((o) => o.kind === "key").length).toBeGreaterThanOrEqual(8);
    expect(ops.filter((o) => o.kind === "admin").length).toBeGreaterThanOrEqual(6);
  });

  it("no key -> 401, an unknown, a revoked or an expired key -> 403, on every key operation; nothing changes", async () => {
    const before = await ownerState();
    const revoked = await addKey(owner.accountId);
    await revokeKey(owner.accountId, revoked.keyId);
    const expired = await addKey(owner.accountId);
    await expireKey(owner.accountId, expired.keyId);
    const credentials: [string, Record<string, string>, number, string][] = [
      ["no key", {}, 401, "MISSING_API_KEY"],
      ["a made-up key (wrong MAC)", { "x-api-key": badMacKey(owner.accountId) }, 403, "INVALID_API_KEY"],
      ["an unknown key", { "x-api-key": await neverIssuedKey() }, 403, "INVALID_API_KEY"],
      [
        "an unknown key id on the owner's account",
        { "x-api-key": await neverIssuedKey(owner.accountId) },
        403,
        "INVALID_API_KEY",
      ],
      ["a revoked key", { "x-api-key": revoked.apiKey }, 403, "INVALID_API_KEY"],
      ["an expired key", { "x-api-key": expired.apiKey }, 403, "INVALID_API_KEY"],
      // Read as a Bearer API key (docs/api.md): not one, so refused like any invalid key.
      ["the admin token", adminHeaders, 403, "INVALID_API_KEY"],
    ];
    const wrong: string[] = [];
    for (const op of ops.filter((o) => o.kind === "key")) {
      for (const [label, headers, plainStatus, plainCode] of credentials) {
        const adminAsKey = op.bearerKey && headers === adminHeaders;
        const [status, code] = adminAsKey ? [403, "INVALID_API_KEY"] : [plainStatus, plainCode];
        const r = await ask(op, headers);
        const ok = r.status === status && (!op.ownEnvelope || r.code === code);
        if (!ok) wrong.push(`${op.method} ${op.template} with ${label}: ${r.status} ${r.text.slice(0, 160)}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(await ownerState()).toEqual(before);
  });

  it("no token, a wrong token, another scheme or an API key -> 401 on every admin operation; nothing changes", async () => {
    const before = await ownerState();
    const tokens: [string, Record<string, string>][] = [
      ["no token", {}],
      ["a wrong token", { authorization: "Bearer wrong" }],
      ["the token with Basic", { authorization: `Basic ${adminHeaders.authorization.slice(7)}` }],
      ["the token in x-api-key", { "x-api-key": adminHeaders.authorization.slice(7) }],
      ["an API key as the bearer token", { authorization: `Bearer ${owner.apiKey}` }],
      ["an API key in x-api-key", { "x-api-key": owner.apiKey }],
    ];
    const wrong: string[] = [];
    for (const op of ops.filter((o) => o.kind === "admin")) {
      for (const [label, headers] of tokens) {
        const r = await ask(op, headers);
        if (r.status !== 401 || r.code !== "UNAUTHORIZED")
          wrong.push(`${op.method} ${op.template} with ${label}: ${r.status} ${r.text.slice(0, 160)}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(await ownerState()).toEqual(before);
  });
});

describe("another account's key", () => {
  it("on every operation that names a batch or an item: 404, the same as an unknown id, and the batch is untouched", async () => {
    const stranger = await newAccount(100, "stranger");
    const before = await ownerState();
    const wrong: string[] = [];
    for (const op of ops.filter((o) => o.kind === "key" && /\{(batchId|itemId)\}/.test(o.template))) {
      const theirs = await ask(op, { "x-api-key": stranger.apiKey });
      const unknown = await ask(op, { "x-api-key": stranger.apiKey }, { ...owner, batchId: crypto.randomUUID() });
      if (theirs.status !== 404 || theirs.code !== unknown.code)
        wrong.push(`${op.method} ${op.template}: ${theirs.status} ${theirs.text.slice(0, 160)}`);
      if (theirs.text.includes(owner.itemId) || theirs.text.includes("example.com"))
        wrong.push(`${op.method} ${op.template} shows the owner's data`);
    }
    expect(wrong).toEqual([]);
    expect(await ownerState()).toEqual(before);
  });

  it("on every other key operation (lists, credits, ledger, cancel-all, create): only the stranger's own data, the owner's untouched", async () => {
    const stranger = await newAccount(100, "stranger");
    const before = await ownerState();
    for (const op of ops.filter((o) => o.kind === "key" && !/\{(batchId|itemId)\}/.test(o.template))) {
      const r = await ask(op, { "x-api-key": stranger.apiKey });
      expect(r.status, `${op.method} ${op.template}: ${r.text.slice(0, 160)}`).toBeLessThan(500);
      expect(r.text, `${op.method} ${op.template}`).not.toContain(owner.batchId);
      expect(r.text, `${op.method} ${op.template}`).not.toContain(owner.accountId);
    }
    expect(await ownerState()).toEqual(before);
  });

  it("the same Idempotency-Key in two accounts makes two batches: keys are per account", async () => {
    const a = await newAccount(100, "a");
    const b = await newAccount(100, "b");
    const send = (apiKey: string) =>
      callJson("/api/batch/scrape", {
        method: "POST",
        headers: keyHeaders(apiKey, { "idempotency-key": "shared-key" }),
        body: JSON.stringify({ urls: ["https://example.com/"] }),
      });
    const [ra, rb] = [await send(a.apiKey), await send(b.apiKey)];
    expect([ra.status, rb.status]).toEqual([202, 202]);
    expect(ra.body.batchId).not.toBe(rb.body.batchId);
    expect((await getBatch(b.apiKey, ra.body.batchId)).status).toBe(404);
  });
});

describe("constant-time comparison", () => {
  it("hashesEqual compares through crypto.subtle.timingSafeEqual, and only equal digests match", () => {
    const spy = vi.spyOn(crypto.subtle, "timingSafeEqual");
    const a = "ab".repeat(32);
    try {
      expect(hashesEqual(a, a)).toBe(true);
      expect(hashesEqual(a, `${a.slice(0, -1)}c`)).toBe(false);
      expect(hashesEqual(a, `c${a.slice(1)}`)).toBe(false);
      expect(spy).toHaveBeenCalledTimes(3);
      // Different lengths never match (and never reach the comparison, which would throw).
      expect(hashesEqual(a, a.slice(1))).toBe(false);
      expect(hashesEqual("", a)).toBe(false);
    } finally {
      spy.mockRestore();
    }
  });

  it("the API key check and the admin token check both compare with timingSafeEqual", async () => {
    const spy = vi.spyOn(crypto.subtle, "timingSafeEqual");
    try {
      expect((await call("/api/credits", { headers: keyHeaders(owner.apiKey) })).status).toBe(200);
      const afterKey = spy.mock.calls.length;
      expect(afterKey).toBeGreaterThanOrEqual(1);
      expect((await call("/api/credits", { headers: keyHeaders(await neverIssuedKey(owner.accountId)) })).status).toBe(
        403,
      );
      // An unknown key id is compared too (against a dummy), so timing does not reveal which ids exist.
      expect(spy.mock.calls.length).toBeGreaterThan(afterKey);
      const afterUnknown = spy.mock.calls.length;
      expect((await call(`/admin/accounts/${owner.accountId}`, { headers: adminHeaders })).status).toBe(200);
      expect(
        (await call(`/admin/accounts/${owner.accountId}`, { headers: { authorization: "Bearer x" } })).status,
      ).toBe(401);
      expect(spy.mock.calls.length).toBeGreaterThanOrEqual(afterUnknown + 2);
    } finally {
      spy.mockRestore();
    }
  });
});
