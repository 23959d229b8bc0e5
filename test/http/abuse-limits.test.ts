/**
 * Cheap abuse (docs/abuse-limits.md): made-up keys refused before any object wakes, failed
 * authentications limited per address and per key id, retries / live opens / reads limited
 * per key, request bodies counted before their entries are validated, error bodies capped.
 * Limiters are injected (the configured test limits are out of reach).
 */
import { listDurableObjectIds } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { Hono } from "hono";
import { afterEach, describe, expect, it } from "vitest";
import { LIMITS } from "../../src/domain/limits";
import type { AppEnv, Env } from "../../src/env";
import { createApp } from "../../src/http/app";
import { ApiError, handleError, MAX_MESSAGE_CHARS } from "../../src/http/errors";
import { adminHeaders, keyHeaders, newAccount, newBatch, urls } from "../helpers";
import { addKey, badMacKey, expectError, neverIssuedKey, revokeKey } from "./support";

type Limiter = { limit: (o: { key: string }) => Promise<{ success: boolean }> };

/** A limiter allowing `allow` calls per key (Infinity: never refuses), recording every key it is asked about. */
function limiter(allow: number) {
  const keys: string[] = [];
  const counts = new Map<string, number>();
  const binding: Limiter = {
    limit: async ({ key }) => {
      keys.push(key);
      const n = (counts.get(key) ?? 0) + 1;
      counts.set(key, n);
      return { success: n <= allow };
    },
  };
  return { keys, binding };
}

/** env.ACCOUNT, recording the name of every account object a request asks for (a stub is needed to wake one). */
function watchedAccounts() {
  const asked: string[] = [];
  const ns = new Proxy(env.ACCOUNT, {
    get: (target, prop) => {
      if (prop === "getByName") return (name: string) => (asked.push(name), target.getByName(name));
      const value: unknown = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { asked, ns: ns as Env["ACCOUNT"] };
}

/** A fresh client address per test: the failure limiters remember refused addresses per isolate. */
function address(): string {
  return `198.51.${Math.floor(Math.random() * 256)}.${Math.floor(Math.random() * 256)}`;
}

async function send(e: Partial<Env>, path: string, init: RequestInit & { ip?: string } = {}) {
  const headers = new Headers(init.headers);
  if (init.ip) headers.set("cf-connecting-ip", init.ip);
  const res = await createApp().request(path, { ...init, headers }, { ...env, ...e });
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body, res, text };
}

function expect429(r: Awaited<ReturnType<typeof send>>, surface: "primary" | "serpwow", message: string | RegExp) {
  expect(r.status).toBe(429);
  expect(r.res.headers.get("retry-after")).toBe("60");
  if (surface === "serpwow") {
    expect(r.body).toEqual({ request_info: { success: false, message: expect.stringMatching(message) } });
  } else {
    expectError(r, 429, "RATE_LIMITED");
    expect(r.body.message).toMatch(message);
  }
}

describe("a key that cannot be valid wakes no object", () => {
  it("a made-up key (wrong MAC) is refused with 403 and no account object is asked or created", async () => {
    const { ns, asked } = watchedAccounts();
    const accountId = crypto.randomUUID();
    const r = await send({ ACCOUNT: ns }, "/api/credits", {
      headers: { "x-api-key": badMacKey(accountId) },
      ip: address(),
    });
    expectError(r, 403, "INVALID_API_KEY");
    expect(asked).toEqual([]);
    const ids = (await listDurableObjectIds(env.ACCOUNT)).map((id) => id.toString());
    expect(ids).not.toContain(env.ACCOUNT.idFromName(accountId).toString());
  });

  it("the same on SerpWow's surface, with the key in the query string", async () => {
    const { ns, asked } = watchedAccounts();
    const r = await send({ ACCOUNT: ns }, `/live/batches?api_key=${badMacKey()}`, { ip: address() });
    expect(r.status).toBe(403);
    expect(r.body).toEqual({ request_info: { success: false, message: "Invalid or expired API key." } });
    expect(asked).toEqual([]);
  });

  it("a key with a right MAC reaches its account object (the watch sees it), which refuses a key it never issued", async () => {
    const { ns, asked } = watchedAccounts();
    const accountId = crypto.randomUUID();
    const r = await send({ ACCOUNT: ns }, "/api/credits", {
      headers: { "x-api-key": await neverIssuedKey(accountId) },
      ip: address(),
    });
    expectError(r, 403, "INVALID_API_KEY");
    expect(asked).toEqual([accountId]);
  });

  it("a revoked key, its MAC right, is still refused", async () => {
    const { accountId } = await newAccount(10);
    const key = await addKey(accountId);
    expect((await send({}, "/api/credits", { headers: { "x-api-key": key.apiKey }, ip: address() })).status).toBe(200);
    await revokeKey(accountId, key.keyId);
    expectError(
      await send({}, "/api/credits", { headers: { "x-api-key": key.apiKey }, ip: address() }),
      403,
      "INVALID_API_KEY",
    );
  });
});

describe("without API_KEY_MAC_SECRET", () => {
  it.each([
    ["missing", undefined],
    ["too short", "x".repeat(31)],
  ])("(%s) no key is issued: 503 API_KEYS_DISABLED, and no account is made", async (_label, secret) => {
    const { ns, asked } = watchedAccounts();
    const e = { API_KEY_MAC_SECRET: secret, ACCOUNT: ns };
    const created = await send(e, "/admin/accounts", {
      method: "POST",
      headers: adminHeaders,
      body: JSON.stringify({ credits: 5 }),
    });
    expectError(created, 503, "API_KEYS_DISABLED");
    expect(created.body.message).toContain("API_KEY_MAC_SECRET");
    const { accountId } = await newAccount(5);
    expectError(
      await send(e, `/admin/accounts/${accountId}/keys`, { method: "POST", headers: adminHeaders, body: "{}" }),
      503,
      "API_KEYS_DISABLED",
    );
    expect(asked).toEqual([]);
  });

  it("no key is accepted, not even a good one: 503 (not 403: the key is not at fault)", async () => {
    const { apiKey } = await newAccount(5);
    expectError(
      await send({ API_KEY_MAC_SECRET: undefined }, "/api/credits", { headers: { "x-api-key": apiKey } }),
      503,
      "API_KEYS_DISABLED",
    );
    // Keys are bound to the secret they were issued under.
    expectError(
      await send({ API_KEY_MAC_SECRET: "another-secret-of-at-least-32-characters" }, "/api/credits", {
        headers: { "x-api-key": apiKey },
      }),
      403,
      "INVALID_API_KEY",
    );
  });
});

describe("failed authentications per client address", () => {
  it("counts failures only: successful requests never reach the failure limiters", async () => {
    const ip = limiter(Infinity);
    const key = limiter(Infinity);
    const { apiKey } = await newAccount(10);
    const e = { FAILED_AUTH_IP_LIMITER: ip.binding, FAILED_AUTH_KEY_LIMITER: key.binding };
    for (let i = 0; i < 5; i++)
      expect((await send(e, "/api/credits", { headers: { "x-api-key": apiKey }, ip: address() })).status).toBe(200);
    expect([ip.keys, key.keys]).toEqual([[], []]);
  });

  it("after the limit, an address gets 429 with Retry-After, and then wakes no object even with a good key; the same key works from elsewhere", async () => {
    const ip = limiter(3);
    const { ns, asked } = watchedAccounts();
    const e = { FAILED_AUTH_IP_LIMITER: ip.binding, ACCOUNT: ns };
    const { apiKey } = await newAccount(10);
    const attacker = address();
    for (let i = 0; i < 3; i++)
      expectError(
        await send(e, "/api/credits", { headers: { "x-api-key": badMacKey() }, ip: attacker }),
        403,
        "INVALID_API_KEY",
      );
    expect429(
      await send(e, "/api/credits", { headers: { "x-api-key": badMacKey() }, ip: attacker }),
      "primary",
      /from this address/,
    );
    expect429(
      await send(e, "/api/credits", { headers: { "x-api-key": apiKey }, ip: attacker }),
      "primary",
      /from this address/,
    );
    expect(asked).toEqual([]);
    expect(ip.keys.every((k) => k === attacker)).toBe(true);
    expect((await send(e, "/api/credits", { headers: { "x-api-key": apiKey }, ip: address() })).status).toBe(200);
  });

  it("a flood of revoked keys (right MAC) from one address wakes the object only until the limit", async () => {
    const ip = limiter(4);
    const { ns, asked } = watchedAccounts();
    const { accountId } = await newAccount(10);
    const dead = await addKey(accountId);
    await revokeKey(accountId, dead.keyId);
    const from = address();
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++)
      statuses.push(
        (
          await send({ FAILED_AUTH_IP_LIMITER: ip.binding, ACCOUNT: ns }, "/api/credits", {
            headers: { "x-api-key": dead.apiKey },
            ip: from,
          })
        ).status,
      );
    expect(statuses).toEqual([403, 403, 403, 403, ...Array(16).fill(429)]);
    // The fifth failure found the limit; after it, nothing reached an object.
    expect(asked).toHaveLength(5);
  });

  it("an address is let through again once its limiter says yes (the window passed); a failure is counted once", async () => {
    let allow = false;
    let calls = 0;
    const e = { FAILED_AUTH_IP_LIMITER: { limit: async () => (calls++, { success: allow }) } };
    const { apiKey } = await newAccount(10);
    const from = address();
    expect429(await send(e, "/api/credits", { headers: { "x-api-key": badMacKey() }, ip: from }), "primary", /address/);
    expect((await send(e, "/api/credits", { headers: { "x-api-key": apiKey }, ip: from })).status).toBe(429);
    allow = true;
    calls = 0;
    // Checked before the work (the address was refused lately), then failed: that check was its count.
    expectError(
      await send(e, "/api/credits", { headers: { "x-api-key": badMacKey() }, ip: from }),
      403,
      "INVALID_API_KEY",
    );
    expect(calls).toBe(1);
    // No longer remembered: a good request is not counted at all.
    expect((await send(e, "/api/credits", { headers: { "x-api-key": apiKey }, ip: from })).status).toBe(200);
    expect(calls).toBe(1);
  });

  it("answers in SerpWow's envelope on /live", async () => {
    const ip = limiter(0);
    const r = await send({ FAILED_AUTH_IP_LIMITER: ip.binding }, `/live/batches?api_key=${badMacKey()}`, {
      ip: address(),
    });
    expect429(r, "serpwow", /from this address/);
  });
});

describe("failed authentications per key id", () => {
  it("a revoked key (right MAC) tried from many addresses is cut at the key's limit, without waking its object", async () => {
    const keyLimiter = limiter(3);
    const { ns, asked } = watchedAccounts();
    const { accountId } = await newAccount(10);
    const dead = await addKey(accountId);
    await revokeKey(accountId, dead.keyId);
    const e = { FAILED_AUTH_KEY_LIMITER: keyLimiter.binding, ACCOUNT: ns };
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++)
      statuses.push((await send(e, "/api/credits", { headers: { "x-api-key": dead.apiKey }, ip: address() })).status);
    expect(statuses).toEqual([403, 403, 403, 429, 429, 429, 429, 429]);
    expect(asked).toHaveLength(4);
    expect(new Set(keyLimiter.keys)).toEqual(new Set([dead.keyId]));
    const r = await send(e, "/api/credits", { headers: { "x-api-key": dead.apiKey }, ip: address() });
    expect429(r, "primary", /with this API key/);
  });

  it("made-up keys carrying a real key id are never counted against it: the real key keeps working, even with the key limiter refusing all", async () => {
    const keyLimiter = limiter(0);
    const { accountId, keyId, apiKey } = await newAccount(10);
    const e = { FAILED_AUTH_KEY_LIMITER: keyLimiter.binding };
    const attacker = address();
    for (let i = 0; i < 10; i++)
      expectError(
        await send(e, "/api/credits", { headers: { "x-api-key": badMacKey(accountId, keyId) }, ip: attacker }),
        403,
        "INVALID_API_KEY",
      );
    expect(keyLimiter.keys).toEqual([]);
    expect((await send(e, "/api/credits", { headers: { "x-api-key": apiKey }, ip: address() })).status).toBe(200);
  });
});

/** Reads of one batch the batch object answers and limits itself (src/batch/poll-budget.ts), not READ_LIMITER. */
const POLLS = [
  "/api/batch/scrape/{batchId}",
  "/api/batch/scrape/{batchId}/items/{itemId}/result",
  "/live/batches/{batchId}",
];

/** Every request limiter answering `success` and recording, so a test sees which ones counted a request. */
function recordingAll(success: boolean) {
  const names = ["CREATE_LIMITER", "CANCEL_LIMITER", "RETRY_LIMITER", "LIVE_LIMITER", "READ_LIMITER"] as const;
  const asked: [string, string][] = [];
  const e = Object.fromEntries(
    names.map((n) => [n, { limit: async ({ key }: { key: string }) => (asked.push([n, key]), { success }) }]),
  );
  return { e: e as Partial<Env>, asked };
}
const refusingAll = () => recordingAll(false);

describe("per-key limits on retries, live-view opens and reads", () => {
  it("POST .../retry answers 429 with Retry-After when RETRY_LIMITER says no, counting by key id", async () => {
    const { apiKey, keyId } = await newAccount(10);
    const { batchId } = await newBatch(apiKey, 1);
    const { e, asked } = refusingAll();
    expect429(
      await send(e, `/api/batch/scrape/${batchId}/retry`, { method: "POST", headers: keyHeaders(apiKey) }),
      "primary",
      /this API key/,
    );
    expect(asked).toEqual([["RETRY_LIMITER", keyId]]);
  });

  it("opening a live view answers 429 when LIVE_LIMITER says no, before the batch is asked", async () => {
    const { apiKey, keyId } = await newAccount(10);
    const { batchId } = await newBatch(apiKey, 1);
    const { e, asked } = refusingAll();
    const r = await send(e, `/api/batch/scrape/${batchId}/live`, {
      headers: { "x-api-key": apiKey, upgrade: "websocket" },
    });
    expect429(r, "primary", /this API key/);
    expect(asked).toEqual([["LIVE_LIMITER", keyId]]);
  });

  it("every keyed GET operation of the OpenAPI document is counted by exactly one limiter and answers 429 in its surface's envelope; a poll the batch object answers, by none", async () => {
    const { apiKey, keyId } = await newAccount(10);
    const { batchId, itemIds } = await newBatch(apiKey, 1);
    const doc = await (await createApp().request("/openapi.json", {}, env)).json<{
      paths: Record<string, Record<string, { security?: object[] }>>;
    }>();
    const gets = Object.entries(doc.paths).filter(([, ops]) =>
      ops.get?.security?.some((s) => "ApiKeyAuth" in s || "ApiKeyQuery" in s),
    );
    expect(gets.length).toBeGreaterThanOrEqual(9);
    const wrong: string[] = [];
    for (const [template] of gets) {
      const path = template.replace("{batchId}", batchId).replace("{itemId}", itemIds[0]!);
      const expected = template.endsWith("/live")
        ? "LIVE_LIMITER"
        : /\/stop(all)?$/.test(template)
          ? "CANCEL_LIMITER"
          : "READ_LIMITER";
      const { e, asked } = refusingAll();
      const r = await send(e, path, { headers: { "x-api-key": apiKey, upgrade: "websocket" } });
      if (POLLS.includes(template)) {
        // Limited by the batch object instead (test/http/poll-budget.test.ts): no binding asked.
        if (r.status === 429 || asked.length > 0)
          wrong.push(`poll GET ${template}: ${r.status} ${JSON.stringify(asked)}`);
        continue;
      }
      const surface = template.startsWith("/live/") ? "serpwow" : "primary";
      const rightBody =
        surface === "serpwow" ? r.body?.request_info?.success === false : r.body?.code === "RATE_LIMITED";
      if (
        r.status !== 429 ||
        r.res.headers.get("retry-after") !== "60" ||
        !rightBody ||
        JSON.stringify(asked) !== JSON.stringify([[expected, keyId]])
      ) {
        wrong.push(`GET ${template}: ${r.status} ${JSON.stringify(asked)} ${r.text.slice(0, 120)}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(gets.map(([t]) => t).filter((t) => POLLS.includes(t))).toHaveLength(POLLS.length);
  });

  it.each([
    ["GET /live/batches/stopall (also matches /live/batches/:batchId)", "/live/batches/stopall", "CANCEL_LIMITER"],
    ["GET .../live without an upgrade (also matches GET /api/*)", "/api/batch/scrape/BATCH/live", "LIVE_LIMITER"],
  ])(
    "%s is counted once, by its own limiter, when every limiter lets it through",
    async (_label, rawPath, expected) => {
      const { apiKey, keyId } = await newAccount(10);
      const { batchId } = await newBatch(apiKey, 1);
      const { e, asked } = recordingAll(true);
      const r = await send(e, rawPath.replace("BATCH", batchId), { headers: { "x-api-key": apiKey } });
      expect(r.status).not.toBe(429);
      expect(asked).toEqual([[expected, keyId]]);
    },
  );

  it("the OpenAPI document lists 429 and 503 on every keyed operation, in the operation's own error envelope", async () => {
    const doc = await (await createApp().request("/openapi.json", {}, env)).json<{
      paths: Record<string, Record<string, any>>;
    }>();
    const keyed = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.entries(ops)
        .filter(([, op]) => op.security?.some((s: object) => "ApiKeyAuth" in s || "ApiKeyQuery" in s))
        .map(([method, op]) => [`${method} ${path}`, op] as const),
    );
    expect(keyed.length).toBeGreaterThanOrEqual(14);
    const wrong: string[] = [];
    for (const [name, op] of keyed) {
      const envelope = op.responses["401"].content["application/json"].schema;
      for (const status of ["429", "503"]) {
        if (JSON.stringify(op.responses[status]?.content?.["application/json"]?.schema) !== JSON.stringify(envelope))
          wrong.push(`${name} ${status}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(doc.paths["/live/batches"]!.get.responses["429"].content["application/json"].schema).toEqual({
      $ref: "#/components/schemas/SerpWowError",
    });
  });

  it("HEAD counts as a read", async () => {
    const { apiKey, keyId } = await newAccount(10);
    const { e, asked } = refusingAll();
    expect((await send(e, "/api/credits", { method: "HEAD", headers: { "x-api-key": apiKey } })).status).toBe(429);
    expect(asked).toEqual([["READ_LIMITER", keyId]]);
  });
});

/** Counts `new HTMLRewriter()`: the check behind every CSS selector (src/executor/extract-json.ts). */
function countSelectorChecks() {
  const scope = globalThis as unknown as { HTMLRewriter: typeof HTMLRewriter };
  const original = scope.HTMLRewriter;
  const counter = { built: 0, restore: () => void (scope.HTMLRewriter = original) };
  scope.HTMLRewriter = new Proxy(original, {
    construct: (target, args, newTarget) => {
      counter.built++;
      return Reflect.construct(target, args, newTarget);
    },
  });
  return counter;
}

let selectorChecks: ReturnType<typeof countSelectorChecks> | undefined;
afterEach(() => {
  selectorChecks?.restore();
  selectorChecks = undefined;
});

describe("request bodies: counted before their entries are validated; error bodies stay small", () => {
  const create = (apiKey: string, body: unknown) =>
    send({}, "/api/batch/scrape", { method: "POST", headers: keyHeaders(apiKey), body: JSON.stringify(body) });

  it("100k selectors: 400 with a small body, and not one selector checked", async () => {
    const { apiKey } = await newAccount(10);
    const selectors = Object.fromEntries(Array.from({ length: 100_000 }, (_, i) => [`s${i}`, "h1"]));
    selectorChecks = countSelectorChecks();
    const r = await create(apiKey, { urls: urls(1), selectors });
    expectError(r, 400, "VALIDATION_ERROR");
    expect(r.body.message).toBe(`selectors: must have at most ${LIMITS.maxSelectors} entries`);
    expect(r.text.length).toBeLessThan(300);
    expect(selectorChecks.built).toBe(0);
  });

  it("selectors within the cap are each checked (the count above can see checks)", async () => {
    const { apiKey } = await newAccount(10);
    selectorChecks = countSelectorChecks();
    const r = await create(apiKey, { urls: urls(1), selectors: { a: "h1", b: "p", c: "div > span" } });
    expect(r.status).toBe(202);
    expect(selectorChecks.built).toBe(3);
  });

  it("150k unknown fields: 400 naming five and counting the rest, in a body under 1.5 KB", async () => {
    const { apiKey } = await newAccount(10);
    const body: Record<string, unknown> = { urls: urls(1) };
    for (let i = 0; i < 150_000; i++) body[`k${i}`] = 1;
    const r = await create(apiKey, body);
    expectError(r, 400, "VALIDATION_ERROR");
    expect(r.body.message).toBe('Unknown fields "k0", "k1", "k2", "k3", "k4" and 149995 more in request body.');
    expect(r.text.length).toBeLessThan(1500);
  });

  it("a huge unknown field name is clipped in the message", async () => {
    const { apiKey } = await newAccount(10);
    const r = await create(apiKey, { urls: urls(1), ["x".repeat(100_000)]: 1 });
    expectError(r, 400, "VALIDATION_ERROR");
    expect(r.body.message.length).toBeLessThan(200);
    expect(r.body.message).toContain(`"${"x".repeat(63)}…"`);
  });

  it("a huge selector name is clipped where the message names its field", async () => {
    const { apiKey } = await newAccount(10);
    const r = await create(apiKey, { urls: urls(1), selectors: { ["-".repeat(100_000)]: "h1" } });
    expectError(r, 400, "VALIDATION_ERROR");
    expect(r.body.message.length).toBeLessThan(200);
    expect(r.body.message).toMatch(/^selectors\.-{63}…: /);
  });

  it("100k URLs: 400 with a small body (counted before any URL is parsed)", async () => {
    const { apiKey } = await newAccount(10);
    const r = await create(apiKey, { urls: urls(100_000, "https://a.io") });
    expectError(r, 400, "VALIDATION_ERROR");
    expect(r.text.length).toBeLessThan(300);
  });

  it("any error message is cut to MAX_MESSAGE_CHARS, in the one envelope every surface builds on", async () => {
    const app = new Hono<AppEnv>().get("/x", () => {
      throw new ApiError(400, "SOMETHING", `${"é".repeat(MAX_MESSAGE_CHARS)}😀${"y".repeat(100_000)}`);
    });
    app.onError(handleError);
    const res = await app.request("/x", {}, env);
    const body = await res.json<{ message: string }>();
    expect(res.status).toBe(400);
    expect(body.message.length).toBe(MAX_MESSAGE_CHARS);
    expect(body.message.endsWith("…")).toBe(true);
  });

  it("a cut never splits a character made of two UTF-16 units", async () => {
    const app = new Hono<AppEnv>().get("/x", () => {
      throw new ApiError(400, "SOMETHING", `${"a".repeat(MAX_MESSAGE_CHARS - 2)}😀${"y".repeat(10)}`);
    });
    app.onError(handleError);
    const body = await (await app.request("/x", {}, env)).json<{ message: string }>();
    expect(body.message).toBe(`${"a".repeat(MAX_MESSAGE_CHARS - 2)}…`);
  });
});
