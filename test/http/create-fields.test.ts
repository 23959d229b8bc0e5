/**
 * Spidra's documented create fields (docs/api.md): each accepted and honoured, or refused
 * with a 400 naming it; a refusal reserves nothing. AI is off in tests (as in local
 * development): the AI-on create path runs with a per-request env holding a fake binding.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { AI_CREDITS_PER_ITEM } from "../../src/domain/pricing";
import type { Env } from "../../src/env";
import { createApp } from "../../src/http/app";
import { openCookies } from "../../src/lib/sealed-cookies";
import {
  batchStub,
  callJson,
  createBatch,
  drainOutbox,
  getBatch,
  getCredits,
  keyHeaders,
  newAccount,
  readAnswer,
  runInBatch,
  urls,
} from "../helpers";
import { dumpAccountStorage, expectError, ledger, listBatches } from "./support";

const ZERO = { reserved: 0, used: 0, refunded: 0 };
const COOKIES = "session=s3cr3t-Value_42; theme=dark";

/** After a refused create: the account is exactly as it was, and no batch exists. */
async function expectUntouched(apiKey: string, credits: number) {
  expect(await getCredits(apiKey)).toEqual({ balance: credits, granted: credits, ...ZERO });
  expect((await listBatches(apiKey)).body.pagination.total).toBe(0);
  expect((await ledger(apiKey)).body.entries.filter((e: { kind: string }) => e.kind === "reserve")).toEqual([]);
}

/** A fake Workers AI binding: never called at create. */
const fakeAi = { run: async () => ({ response: {} }) } as unknown as Ai;
const AI_ON: Partial<Env> = { AI: fakeAi, AI_ENABLED: "true" };

/** POST /api/batch/scrape against the app with `overrides` on the test env. */
async function createWith(
  overrides: Partial<Env>,
  apiKey: string,
  body: unknown,
  headers: Record<string, string> = {},
) {
  const res = await createApp().request(
    "/api/batch/scrape",
    { method: "POST", headers: keyHeaders(apiKey, headers), body: JSON.stringify(body) },
    { ...env, ...overrides },
  );
  return readAnswer(res);
}

/** Every row of every table of a batch object. */
async function dumpBatchStorage(batchId: string): Promise<string> {
  return runInBatch(batchId, (_o, state) => {
    const sql = state.storage.sql;
    const tables = sql
      .exec<{ name: string }>(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'",
      )
      .toArray()
      .map((t) => t.name);
    return JSON.stringify(tables.map((t) => sql.exec(`SELECT * FROM "${t}"`).toArray()));
  });
}

/** Starts the batch's first item, as the executor would, and returns its lease. */
async function firstLease(batchId: string) {
  const itemId = await runInBatch(
    batchId,
    (_o, state) => state.storage.sql.exec<{ id: string }>("SELECT id FROM items ORDER BY idx LIMIT 1").one().id,
  );
  const lease = await batchStub(batchId).startItem(itemId);
  if (lease.action !== "run") throw new Error(`not started: ${lease.reason}`);
  return lease;
}

describe("useProxy, proxyCountry, screenshot, fullPageScreenshot: no means here", () => {
  it.each([
    [{ useProxy: true }, "useProxy", "proxy"],
    [{ proxyCountry: "de" }, "proxyCountry", "proxy"],
    [{ useProxy: false, proxyCountry: "us" }, "proxyCountry", "proxy"],
    [{ screenshot: true }, "screenshot", "screenshot"],
    [{ fullPageScreenshot: true }, "fullPageScreenshot", "screenshot"],
  ])("%j is refused with 400 OPTION_UNAVAILABLE naming %s, nothing reserved", async (extra, field, why) => {
    const { apiKey } = await newAccount(100);
    const r = await createBatch(apiKey, { urls: urls(2), ...extra });
    expectError(r, 400, "OPTION_UNAVAILABLE");
    expect(r.body.message.startsWith(`${field}: `)).toBe(true);
    expect(r.body.message).toContain(why);
    await expectUntouched(apiKey, 100);
  });

  it("false (what typed clients send) is accepted", async () => {
    const { apiKey } = await newAccount(100);
    const r = await createBatch(apiKey, {
      urls: urls(2),
      useProxy: false,
      screenshot: false,
      fullPageScreenshot: false,
      extractContentOnly: false,
    });
    expect(r.status).toBe(202);
    expect(await getCredits(apiKey)).toMatchObject({ balance: 96, reserved: 4 });
  });

  it.each([
    [{ useProxy: "yes" }, "useProxy"],
    [{ screenshot: 1 }, "screenshot"],
    [{ extractContentOnly: "true" }, "extractContentOnly"],
    [{ cookies: 5 }, "cookies"],
    [{ prompt: ["x"] }, "prompt"],
    [{ schema: "object" }, "schema"],
  ])("a wrong type %j is a 400 VALIDATION_ERROR naming %s", async (extra, field) => {
    const { apiKey } = await newAccount(100);
    const r = await createBatch(apiKey, { urls: urls(1), ...extra });
    expectError(r, 400, "VALIDATION_ERROR");
    expect(r.body.message.startsWith(`${field}: `)).toBe(true);
    await expectUntouched(apiKey, 100);
  });
});

describe("extractContentOnly", () => {
  it("is stored and handed to the executor with each lease", async () => {
    const { apiKey } = await newAccount(100);
    const on = await createBatch(apiKey, { urls: urls(1), extractContentOnly: true });
    const off = await createBatch(apiKey, { urls: urls(1) });
    expect((await firstLease(on.body.batchId)).mainContentOnly).toBe(true);
    expect((await firstLease(off.body.batchId)).mainContentOnly).toBe(false);
  });
});

describe("prompt and schema where AI is off (tests and local development)", () => {
  it("a prompt is refused with 400 OPTION_UNAVAILABLE naming prompt and how to turn AI on, nothing reserved", async () => {
    const { apiKey } = await newAccount(100);
    const r = await createBatch(apiKey, { urls: urls(3), prompt: "List the prices" });
    expectError(r, 400, "OPTION_UNAVAILABLE");
    expect(r.body.message.startsWith("prompt: ")).toBe(true);
    expect(r.body.message).toContain('AI_ENABLED = "true"');
    expect(r.body.message).toContain("docs/ai-extraction.md");
    await expectUntouched(apiKey, 100);
  });

  it("a schema alone is refused naming schema", async () => {
    const { apiKey } = await newAccount(100);
    const r = await createBatch(apiKey, { urls: urls(1), schema: { type: "object" } });
    expectError(r, 400, "OPTION_UNAVAILABLE");
    expect(r.body.message.startsWith("schema: ")).toBe(true);
    await expectUntouched(apiKey, 100);
  });

  it("the flag without the binding (or the binding without the flag) is still off", async () => {
    const { apiKey } = await newAccount(100);
    for (const overrides of [{ AI_ENABLED: "true" }, { AI: fakeAi, AI_ENABLED: "false" }]) {
      expectError(await createWith(overrides, apiKey, { urls: urls(1), prompt: "x" }), 400, "OPTION_UNAVAILABLE");
    }
    await expectUntouched(apiKey, 100);
  });

  it.each(["", "   "])(
    "a blank prompt (%j, as typed Spidra clients must send one) asks for nothing: accepted",
    async (prompt) => {
      const { apiKey } = await newAccount(100);
      const r = await createBatch(apiKey, { urls: urls(2), prompt });
      expect(r.status).toBe(202);
      expect(await getCredits(apiKey)).toMatchObject({ reserved: 4 });
      expect((await firstLease(r.body.batchId)).ai).toBeNull();
    },
  );
});

describe("prompt and schema where AI is on", () => {
  const schema = {
    type: "object",
    properties: { title: { type: "string" }, price: { type: ["number", "null"] } },
    required: ["title"],
  };

  it("is accepted, priced apart (AI_CREDITS_PER_ITEM more per item) and handed to the executor", async () => {
    const { apiKey } = await newAccount(100);
    const r = await createWith(AI_ON, apiKey, { urls: urls(3), prompt: "  The title and price  ", schema });
    expect(r.status).toBe(202);
    const price = 2 + AI_CREDITS_PER_ITEM;
    expect(await getCredits(apiKey)).toMatchObject({ balance: 100 - 3 * price, reserved: 3 * price });
    expect((await getBatch(apiKey, r.body.batchId)).body.creditsPerItem).toBe(price);
    const lease = await firstLease(r.body.batchId);
    expect(lease.ai).toEqual({ prompt: "The title and price", schema });
  });

  it("markdown output with a prompt costs 1 + AI_CREDITS_PER_ITEM", async () => {
    const { apiKey } = await newAccount(100);
    const r = await createWith(AI_ON, apiKey, { urls: urls(2), output: "markdown", prompt: "Summarise" });
    expect(r.status).toBe(202);
    expect(await getCredits(apiKey)).toMatchObject({ reserved: 2 * (1 + AI_CREDITS_PER_ITEM) });
  });

  it.each([
    [{ prompt: "x".repeat(4001) }, "prompt: must be at most 4000 characters"],
    [
      { prompt: "x", schema: { type: "object", properties: { a: { type: "string", pattern: "^a+$" } } } },
      "schema: properties.a.pattern: keyword not supported",
    ],
    [{ prompt: "x", schema: { $ref: "#/defs/a", type: "object" } }, "schema: $ref: keyword not supported"],
    [
      { prompt: "x", schema: { type: "array", items: { type: "string" } } },
      'schema: the top level must have type "object"',
    ],
    [
      { prompt: "x", schema: { type: "object", properties: { a: { type: "date" } } } },
      "schema: properties.a.type: must be one of",
    ],
    [{ prompt: "x", output: "markdown", schema: { type: "object" } }, 'schema: needs output "json"'],
  ])("%j is refused with 400 naming the field, nothing reserved", async (extra, message) => {
    const { apiKey } = await newAccount(100);
    const r = await createWith(AI_ON, apiKey, { urls: urls(1), ...extra });
    expectError(r, 400, "VALIDATION_ERROR");
    expect(r.body.message.startsWith(message)).toBe(true);
    await expectUntouched(apiKey, 100);
  });

  it("a schema over 16 KB is refused", async () => {
    const { apiKey } = await newAccount(100);
    const properties = Object.fromEntries(
      Array.from({ length: 400 }, (_, i) => [`p${i}`, { type: "string", description: "d".repeat(40) }]),
    );
    const r = await createWith(AI_ON, apiKey, { urls: urls(1), prompt: "x", schema: { type: "object", properties } });
    expectError(r, 400, "VALIDATION_ERROR");
    expect(r.body.message).toMatch(/^schema: is over 16384 bytes/);
    await expectUntouched(apiKey, 100);
  });
});

describe("cookies", () => {
  it("are accepted, handed to the executor sealed (never in the clear), and never echoed or stored in the clear", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const r = await createBatch(apiKey, { urls: urls(2), cookies: COOKIES }, { "idempotency-key": "with-cookies" });
    expect(r.status).toBe(202);
    const batchId = r.body.batchId;
    const lease = await firstLease(batchId);
    expect(lease.cookies).toMatch(/^v1\./);
    expect(lease.cookies).not.toContain("s3cr3t");
    expect(await openCookies(lease.cookies!, env.COOKIE_SECRET!, batchId)).toBe(COOKIES);
    // Bound to its batch: the sealed value does not open as another batch's.
    expect(await openCookies(lease.cookies!, env.COOKIE_SECRET!, crypto.randomUUID())).toBeNull();
    await drainOutbox(batchId);
    for (const text of [
      await dumpBatchStorage(batchId),
      JSON.stringify(await dumpAccountStorage(accountId)),
      JSON.stringify((await getBatch(apiKey, batchId)).body),
      JSON.stringify((await listBatches(apiKey)).body),
      JSON.stringify(r.body),
    ]) {
      expect(text).not.toContain("s3cr3t");
    }
  });

  it("count towards idempotency: the same cookies replay, other cookies are refused", async () => {
    const { apiKey } = await newAccount(100);
    const body = { urls: urls(1), cookies: COOKIES };
    const first = await createBatch(apiKey, body, { "idempotency-key": "ck" });
    const again = await createBatch(apiKey, body, { "idempotency-key": "ck" });
    expect(again.body).toEqual(first.body);
    const other = await createBatch(apiKey, { ...body, cookies: "session=other" }, { "idempotency-key": "ck" });
    expectError(other, 422, "IDEMPOTENCY_KEY_REUSED");
  });

  it.each([
    ["a=1\r\nX-Injected: yes", "must not contain CR, LF or NUL"],
    ["a=1\nb=2", "must not contain CR, LF or NUL"],
    ["novalue", "cookie 1 is not name=value"],
    ["a=1; =2", "cookie 2 is not name=value"],
    ["bad name=1", "cookie 1 has a name"],
    ['a=has space; b="q"', "cookie 1 has a value"],
    ["a=x,y", "cookie 1 has a value"],
    [`a=${"v".repeat(8200)}`, "must be at most 8192 bytes"],
    [Array.from({ length: 101 }, (_, i) => `c${i}=1`).join("; "), "must hold at most 100 cookies"],
  ])("%j is refused with 400 naming cookies (without quoting them), nothing reserved", async (cookies, message) => {
    const { apiKey } = await newAccount(100);
    const r = await createBatch(apiKey, { urls: urls(1), cookies });
    expectError(r, 400, "VALIDATION_ERROR");
    expect(r.body.message.startsWith(`cookies: ${message}`)).toBe(true);
    expect(r.body.message).not.toContain("X-Injected");
    await expectUntouched(apiKey, 100);
  });

  it("without COOKIE_SECRET are refused with 400 OPTION_UNAVAILABLE naming cookies, nothing reserved", async () => {
    const { apiKey } = await newAccount(100);
    for (const secret of [undefined, "short"]) {
      const r = await createWith({ COOKIE_SECRET: secret }, apiKey, { urls: urls(1), cookies: COOKIES });
      expectError(r, 400, "OPTION_UNAVAILABLE");
      expect(r.body.message).toMatch(/^cookies: .*COOKIE_SECRET/);
    }
    await expectUntouched(apiKey, 100);
  });

  it("are erased when the batch ends, and a retry after that is refused (409 COOKIES_ERASED), nothing reserved", async () => {
    const { apiKey } = await newAccount(100);
    const r = await createBatch(apiKey, { urls: urls(1), cookies: COOKIES });
    const batchId = r.body.batchId;
    const sealed = () =>
      runInBatch(
        batchId,
        (_o, state) => state.storage.sql.exec<{ c: string | null }>("SELECT cookies_sealed AS c FROM batch").one().c,
      );
    expect(await sealed()).toMatch(/^v1\./);
    const lease = await firstLease(batchId);
    await batchStub(batchId).failItem(lease.itemId, lease.attempt, { code: "HTTP_404", message: "HTTP 404" });
    await drainOutbox(batchId);
    expect((await getBatch(apiKey, batchId)).body.status).toBe("failed");
    expect(await sealed()).toBeNull();
    const before = await getCredits(apiKey);
    const retried = await callJson(`/api/batch/scrape/${batchId}/retry`, {
      method: "POST",
      headers: keyHeaders(apiKey),
    });
    expectError(retried, 409, "COOKIES_ERASED");
    expect(await getCredits(apiKey)).toEqual(before);
  });

  it("a batch without cookies still retries after it ended", async () => {
    const { apiKey } = await newAccount(100);
    const r = await createBatch(apiKey, { urls: urls(1) });
    const lease = await firstLease(r.body.batchId);
    await batchStub(r.body.batchId).failItem(lease.itemId, lease.attempt, { code: "HTTP_404", message: "HTTP 404" });
    await drainOutbox(r.body.batchId);
    const retried = await callJson(`/api/batch/scrape/${r.body.batchId}/retry`, {
      method: "POST",
      headers: keyHeaders(apiKey),
    });
    expect(retried.status).toBe(202);
  });

  it("are erased when the batch is cancelled", async () => {
    const { apiKey } = await newAccount(100);
    const r = await createBatch(apiKey, { urls: urls(2), cookies: COOKIES });
    const cancelled = await callJson(`/api/batch/scrape/${r.body.batchId}`, {
      method: "DELETE",
      headers: keyHeaders(apiKey),
    });
    expect(cancelled.status).toBe(200);
    expect(await dumpBatchStorage(r.body.batchId)).not.toContain('"cookies_sealed":"v1.');
    expect(
      await runInBatch(
        r.body.batchId,
        (_o, state) => state.storage.sql.exec<{ c: string | null }>("SELECT cookies_sealed AS c FROM batch").one().c,
      ),
    ).toBeNull();
  });
});
