import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/http/app";
import { ADMIN_TOKEN, adminHeaders, callJson, getBatch, getCredits, newAccount, newBatch, urls } from "../helpers";
import {
  addKey,
  badMacKey,
  expectError,
  expireKey,
  KEY_RE,
  listBatches,
  macOf,
  neverIssuedKey,
  randomHex,
  revokeKey,
  secretOf,
} from "./support";

/** An account with credits, one pending batch, and a key of the kind the test needs. */
interface Fixture {
  accountId: string;
  keyId: string;
  apiKey: string;
  batchId: string;
}

async function fixture(): Promise<Fixture> {
  const { accountId, keyId, apiKey } = await newAccount(100);
  const { batchId } = await newBatch(apiKey, 2);
  return { accountId, keyId, apiKey, batchId };
}

/** The credential a request carries: `undefined` sends no x-api-key header at all. */
type Credential = (f: Fixture) => Promise<string | undefined>;

const credentials: [string, Credential][] = [
  ["no key", async () => undefined],
  ["an empty key", async () => ""],
  ["a malformed key", async () => "not-a-key"],
  ["a malformed key with the right prefix", async (f) => `bsk_${f.accountId}_${f.keyId}`],
  ["a valid key with trailing junk", async (f) => `${f.apiKey}x`],
  ["a made-up key (well-formed, wrong MAC)", async () => badMacKey()],
  ["a real key id with a made-up secret and MAC", async (f) => badMacKey(f.accountId, f.keyId)],
  ["a real key with its MAC changed", async (f) => `${f.apiKey.slice(0, -1)}${f.apiKey.endsWith("0") ? "1" : "0"}`],
  [
    "a real key MACed under another secret",
    async (f) =>
      `${f.apiKey.slice(0, -33)}_${await macOf(f.apiKey.slice(0, -33), "another-secret-of-at-least-32-characters")}`,
  ],
  ["a key in the old format (no MAC)", async (f) => f.apiKey.slice(0, -33)],
  ["an unknown key (right MAC, never issued)", async () => neverIssuedKey()],
  ["an unknown key id on a real account", async (f) => neverIssuedKey(f.accountId, randomHex(8))],
  ["a real key id with the wrong secret", async (f) => neverIssuedKey(f.accountId, f.keyId)],
  [
    "a revoked key",
    async (f) => {
      const k = await addKey(f.accountId);
      await revokeKey(f.accountId, k.keyId);
      return k.apiKey;
    },
  ],
  [
    "an expired key",
    async (f) => {
      const k = await addKey(f.accountId);
      await expireKey(f.accountId, k.keyId);
      return k.apiKey;
    },
  ],
];

/** Missing (or empty) -> 401 MISSING_API_KEY; anything present but not valid -> 403 INVALID_API_KEY. */
function expectedFor(label: string): [number, string] {
  return label === "no key" || label === "an empty key" ? [401, "MISSING_API_KEY"] : [403, "INVALID_API_KEY"];
}

interface PublicRoute {
  method: string;
  path: (f: Fixture) => string;
  body?: unknown;
}

const publicRoutes: [string, PublicRoute][] = [
  ["POST /api/batch/scrape", { method: "POST", path: () => "/api/batch/scrape", body: { urls: urls(3) } }],
  ["GET /api/batch/scrape", { method: "GET", path: () => "/api/batch/scrape" }],
  ["GET /api/batch/scrape/:batchId", { method: "GET", path: (f) => `/api/batch/scrape/${f.batchId}` }],
  ["DELETE /api/batch/scrape/:batchId", { method: "DELETE", path: (f) => `/api/batch/scrape/${f.batchId}` }],
  ["POST /api/batch/scrape/:batchId/retry", { method: "POST", path: (f) => `/api/batch/scrape/${f.batchId}/retry` }],
  ["GET /api/credits", { method: "GET", path: () => "/api/credits" }],
  ["GET /api/credits/ledger", { method: "GET", path: () => "/api/credits/ledger" }],
];

const matrix = publicRoutes.flatMap(([name, route]) =>
  credentials.map(([label, credential]) => [name, label, route, credential] as const),
);

describe("public API access matrix", () => {
  it.each(matrix)("%s with %s is refused and changes nothing", async (_name, label, route, credential) => {
    const f = await fixture();
    const key = await credential(f);
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (key !== undefined) headers["x-api-key"] = key;
    const r = await callJson(route.path(f), {
      method: route.method,
      headers,
      body: route.body === undefined ? undefined : JSON.stringify(route.body),
    });
    const [status, code] = expectedFor(label);
    expectError(r, status, code);

    // Nothing happened behind the refusal: same credits, same single pending batch.
    expect(await getCredits(f.apiKey)).toEqual({ balance: 96, reserved: 4, used: 0, refunded: 0, granted: 100 });
    expect((await listBatches(f.apiKey)).body.pagination.total).toBe(1);
    expect((await getBatch(f.apiKey, f.batchId)).body).toMatchObject({ status: "pending", pendingCount: 2 });
  });

  it.each(publicRoutes)("%s with a valid key gets past authentication", async (_name, route) => {
    const f = await fixture();
    const r = await callJson(route.path(f), {
      method: route.method,
      headers: { "x-api-key": f.apiKey, "content-type": "application/json" },
      body: route.body === undefined ? undefined : JSON.stringify(route.body),
    });
    expect(r.status).not.toBe(401);
    expect(r.status).not.toBe(403);
    // The retry of a batch with no failed items is refused for that reason, not for the key.
    expect(r.status).toBe(route.path(f).endsWith("/retry") ? 400 : route.method === "POST" ? 202 : 200);
  });

  it("does not accept the key in the query string", async () => {
    const f = await fixture();
    expectError(await callJson(`/api/credits?api_key=${encodeURIComponent(f.apiKey)}`), 401, "MISSING_API_KEY");
  });

  it("accepts the key as a bearer token (test/http/bearer.test.ts has the rest)", async () => {
    const f = await fixture();
    const r = await callJson("/api/credits", { headers: { authorization: `Bearer ${f.apiKey}` } });
    expect(r.status).toBe(200);
  });

  it("an account's key does not open another account's data: a key is bound to its own account", async () => {
    const a = await fixture();
    const b = await fixture();
    // b's key id and secret under a's account id, even with a right MAC: no such key on a.
    const signed = `bsk_${a.accountId.replace(/-/g, "")}_${b.keyId}_${secretOf(b.apiKey)}`;
    const forged = `${signed}_${await macOf(signed)}`;
    expect(forged).toMatch(KEY_RE);
    expectError(await callJson("/api/credits", { headers: { "x-api-key": forged } }), 403, "INVALID_API_KEY");
  });

  it("an expired key stays refused while a key that has not expired keeps working", async () => {
    const f = await fixture();
    const fresh = await addKey(f.accountId, { expiresAt: new Date(Date.now() + 3_600_000).toISOString() });
    const old = await addKey(f.accountId);
    await expireKey(f.accountId, old.keyId);
    expect((await getCredits(fresh.apiKey)).balance).toBe(96);
    expectError(await callJson("/api/credits", { headers: { "x-api-key": old.apiKey } }), 403, "INVALID_API_KEY");
  });
});

interface AdminRoute {
  method: string;
  path: (f: Fixture) => string;
  body?: unknown;
}

const adminRoutes: [string, AdminRoute][] = [
  ["POST /admin/accounts", { method: "POST", path: () => "/admin/accounts", body: { name: "x", credits: 5 } }],
  ["GET /admin/accounts/:accountId", { method: "GET", path: (f) => `/admin/accounts/${f.accountId}` }],
  [
    "POST /admin/accounts/:accountId/credits",
    { method: "POST", path: (f) => `/admin/accounts/${f.accountId}/credits`, body: { amount: 1000 } },
  ],
  [
    "POST /admin/accounts/:accountId/keys",
    { method: "POST", path: (f) => `/admin/accounts/${f.accountId}/keys`, body: {} },
  ],
  [
    "DELETE /admin/accounts/:accountId/keys/:keyId",
    { method: "DELETE", path: (f) => `/admin/accounts/${f.accountId}/keys/${f.keyId}` },
  ],
];

const badAuthorizations: [string, string | undefined][] = [
  ["no token", undefined],
  ["a wrong token", "Bearer wrong-token"],
  ["the right token with another scheme", `Basic ${ADMIN_TOKEN}`],
  ["the right token without a scheme", ADMIN_TOKEN],
  ["a prefix of the right token", `Bearer ${ADMIN_TOKEN.slice(0, -1)}`],
  ["the right token with a suffix", `Bearer ${ADMIN_TOKEN}x`],
  ["an empty bearer token", "Bearer "],
];

const adminMatrix = adminRoutes.flatMap(([name, route]) =>
  badAuthorizations.map(([label, auth]) => [name, label, route, auth] as const),
);

describe("admin access matrix", () => {
  it.each(adminMatrix)(
    "%s with %s is refused with 401 UNAUTHORIZED and changes nothing",
    async (_name, _label, route, auth) => {
      const f = await fixture();
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (auth !== undefined) headers.authorization = auth;
      const r = await callJson(route.path(f), {
        method: route.method,
        headers,
        body: route.body === undefined ? undefined : JSON.stringify(route.body),
      });
      expectError(r, 401, "UNAUTHORIZED");
      expect(r.body.message).not.toContain(ADMIN_TOKEN);
      // No credits granted, no key revoked.
      expect(await getCredits(f.apiKey)).toEqual({ balance: 96, reserved: 4, used: 0, refunded: 0, granted: 100 });
      const account = await callJson(`/admin/accounts/${f.accountId}`, { headers: adminHeaders });
      expect(account.body.keys).toEqual([expect.objectContaining({ keyId: f.keyId, revokedAt: null })]);
    },
  );

  it.each(adminRoutes)("%s with the right token gets past authentication", async (_name, route) => {
    const f = await fixture();
    const r = await callJson(route.path(f), {
      method: route.method,
      headers: adminHeaders,
      body: route.body === undefined ? undefined : JSON.stringify(route.body),
    });
    expect(r.status).toBe(route.method === "POST" && !route.path(f).endsWith("/credits") ? 201 : 200);
  });
});

describe("admin routes with no ADMIN_TOKEN configured", () => {
  const disabledCases = adminRoutes.flatMap(([name, route]) =>
    (
      [
        ["the old token", `Bearer ${ADMIN_TOKEN}`],
        ["no token", undefined],
        ["the token 'undefined'", "Bearer undefined"],
      ] as const
    ).map(([label, auth]) => [name, label, route, auth] as const),
  );

  it.each(disabledCases)("%s with %s answers 403 ADMIN_DISABLED", async (_name, _label, route, auth) => {
    const f = await fixture();
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (auth !== undefined) headers.authorization = auth;
    const res = await createApp().request(
      route.path(f),
      { method: route.method, headers, body: route.body === undefined ? undefined : JSON.stringify(route.body) },
      { ...env, ADMIN_TOKEN: undefined },
    );
    const body = await res.json();
    expectError({ status: res.status, body, res }, 403, "ADMIN_DISABLED");
    expect(await getCredits(f.apiKey)).toMatchObject({ balance: 96, granted: 100 });
  });

  it("answers 403 ADMIN_DISABLED when ADMIN_TOKEN is an empty string, even to an empty bearer token", async () => {
    const res = await createApp().request(
      "/admin/accounts",
      { method: "POST", headers: { authorization: "Bearer ", "content-type": "application/json" }, body: "{}" },
      { ...env, ADMIN_TOKEN: "" },
    );
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ status: "error", code: "ADMIN_DISABLED" });
  });

  it("keeps the public API working without an ADMIN_TOKEN", async () => {
    const f = await fixture();
    const res = await createApp().request(
      "/api/credits",
      { headers: { "x-api-key": f.apiKey } },
      { ...env, ADMIN_TOKEN: undefined },
    );
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ balance: 96, reserved: 4 });
  });
});
