/**
 * Firecrawl's `{ type: "json", prompt, schema }` format and `onlyMainContent` on /v2: the json
 * format is our AI extraction (refused where AI is off, priced with the AI surcharge, the
 * model's answer at the document's `json`), onlyMainContent our main-content extraction (on
 * unless false, Firecrawl's default). AI is off in tests: the AI-on paths run with a
 * per-request env holding a fake Workers AI binding, as in test/http/create-fields.test.ts.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { AI_CREDITS_PER_ITEM, CREDITS_PER_ITEM } from "../../src/domain/pricing";
import type { Env } from "../../src/env";
import { runItem } from "../../src/executor/run-item";
import { createApp } from "../../src/http/app";
import {
  batchStub,
  callJson,
  drainOutbox,
  getCredits,
  keyHeaders,
  newAccount,
  readAnswer,
  runInBatch,
} from "../helpers";

const PAGE = `<!doctype html><html lang="en"><head><title>Widgets</title></head>
<body><nav><a href="/home">Home menu</a></nav><main><h1>Widgets</h1><p>A widget costs 12 euros.</p></main>
<footer>Footer small print</footer></body></html>`;

const web: typeof fetch = async () =>
  new Response(PAGE, { status: 200, headers: { "content-type": "text/html; charset=utf-8" } });

/** A fake Workers AI binding answering `response`, recording the prompts it was sent. */
function fakeAi(response: unknown) {
  const calls: { model: string; inputs: any }[] = [];
  const binding = {
    run: async (model: string, inputs: unknown) => {
      calls.push({ model, inputs });
      return { response };
    },
  } as unknown as Ai;
  return { calls, aiEnv: { ...env, AI: binding, AI_ENABLED: "true" } as Env };
}

/** POST /v2/batch/scrape with this env. */
async function create(testEnv: Env, apiKey: string, body: unknown) {
  const res = await createApp().request(
    "/v2/batch/scrape",
    {
      method: "POST",
      headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
      body: JSON.stringify(body),
    },
    testEnv,
  );
  return readAnswer(res);
}

/** Leases the batch's first item, runs it through the real executor with this env, and settles it. */
async function runFirst(batchId: string, testEnv: Env) {
  const itemId = await runInBatch(
    batchId,
    (_o, state) => state.storage.sql.exec<{ id: string }>("SELECT id FROM items ORDER BY idx LIMIT 1").one().id,
  );
  const stub = batchStub(batchId);
  const lease = await stub.startItem(itemId);
  if (lease.action !== "run") throw new Error(`not started: ${lease.reason}`);
  const outcome = await runItem(lease, testEnv, web);
  if (outcome.ok) await stub.completeItem(itemId, lease.attempt, outcome.inline, outcome.meta);
  else await stub.failItem(itemId, lease.attempt, outcome.error, { retryable: false, meta: outcome.meta });
  return { lease, outcome };
}

const status = (apiKey: string, id: string, path = "") =>
  callJson(`/v2/batch/scrape/${id}${path}`, { headers: { authorization: `Bearer ${apiKey}` } });

const SCHEMA = {
  type: "object",
  properties: { product: { type: "string" }, price: { type: "number" } },
  required: ["product", "price"],
};

describe("formats: { type: json } where AI is off", () => {
  it.each([
    [{ formats: [{ type: "json", prompt: "The price" }] }, /^formats\[0\]: AI extraction is turned off/],
    [{ formats: ["markdown", { type: "json", schema: SCHEMA }] }, /^formats\[1\]: AI extraction is turned off/],
  ])("%j: 400 in Firecrawl's envelope, naming the entry and how to turn AI on; nothing reserved", async (extra, m) => {
    const { apiKey } = await newAccount(100);
    const r = await create(env as Env, apiKey, { urls: ["https://example.com/a"], ...extra });
    expect(r.status).toBe(400);
    expect(r.body.success).toBe(false);
    expect(r.body.error).toMatch(m);
    expect(r.body.error).toContain('AI_ENABLED = "true"');
    expect(await getCredits(apiKey)).toMatchObject({ balance: 100, reserved: 0, used: 0 });
    const list = await callJson("/api/batch/scrape", { headers: keyHeaders(apiKey) });
    expect(list.body.pagination.total).toBe(0);
  });
});

describe("formats: { type: json } where AI is on", () => {
  it("is priced with the AI surcharge; the document carries the model's answer at json", async () => {
    const { apiKey } = await newAccount(100);
    const answer = { product: "Widget", price: 12 };
    const { calls, aiEnv } = fakeAi(answer);
    const price = CREDITS_PER_ITEM.document + AI_CREDITS_PER_ITEM;
    const created = await create(aiEnv, apiKey, {
      urls: ["https://example.com/a"],
      formats: ["markdown", { type: "json", prompt: "The product and its price", schema: SCHEMA }],
    });
    expect(created.status).toBe(200);
    expect(await getCredits(apiKey)).toMatchObject({ reserved: price });

    const { lease } = await runFirst(created.body.id, aiEnv);
    expect(lease.ai).toEqual({ prompt: "The product and its price", schema: SCHEMA });
    expect(calls).toHaveLength(1);
    // JSON mode, held to the schema; the page went to the model as Markdown.
    expect(calls[0]!.inputs.response_format).toEqual({ type: "json_schema", json_schema: SCHEMA });
    expect(JSON.stringify(calls[0]!.inputs.messages)).toContain("A widget costs 12 euros.");

    const res = await status(apiKey, created.body.id);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ success: true, status: "completed", completed: 1, creditsUsed: price });
    const doc = res.body.data[0];
    expect(Object.keys(doc).sort()).toEqual(["json", "markdown", "metadata"]);
    expect(doc.json).toEqual(answer);
    expect(doc.markdown).toContain("A widget costs 12 euros.");
    await drainOutbox(created.body.id);
    expect(await getCredits(apiKey)).toMatchObject({ balance: 100 - price, reserved: 0, used: price });
  });

  it("a prompt alone (json as the only format) gives the document its json and its metadata", async () => {
    const { apiKey } = await newAccount(100);
    const { calls, aiEnv } = fakeAi({ anything: ["goes"] });
    const created = await create(aiEnv, apiKey, {
      urls: ["https://example.com/a"],
      formats: [{ type: "json", prompt: "Anything" }],
    });
    expect(created.status).toBe(200);
    await runFirst(created.body.id, aiEnv);
    expect(calls[0]!.inputs.response_format).toEqual({ type: "json_object" });
    const doc = (await status(apiKey, created.body.id)).body.data[0];
    expect(Object.keys(doc).sort()).toEqual(["json", "metadata"]);
    expect(doc.json).toEqual({ anything: ["goes"] });
  });

  it("an answer that does not fit the schema fails the item as on the Spidra path, not charged", async () => {
    const { apiKey } = await newAccount(100);
    const { aiEnv } = fakeAi({ product: "Widget" }); // price missing
    const created = await create(aiEnv, apiKey, {
      urls: ["https://example.com/a"],
      formats: [{ type: "json", schema: SCHEMA }],
    });
    const { outcome } = await runFirst(created.body.id, aiEnv);
    expect(outcome).toMatchObject({ ok: false, retryable: false, error: { code: "AI_OUTPUT_INVALID" } });
    const res = await status(apiKey, created.body.id);
    expect(res.body).toMatchObject({ status: "failed", completed: 0, creditsUsed: 0, data: [] });
    const errors = await status(apiKey, created.body.id, "/errors");
    expect(errors.body.errors).toHaveLength(1);
    expect(errors.body.errors[0].error).toMatch(/schema/);
    await drainOutbox(created.body.id);
    expect(await getCredits(apiKey)).toMatchObject({ balance: 100, reserved: 0, used: 0 });
  });

  it.each([
    [{ type: "json" }, /^formats\[0\]: "json" needs a prompt, a schema or both/],
    ["json", /^formats\[0\]: "json" needs a prompt, a schema or both/],
    [{ type: "json", prompt: "x", model: "gpt" }, /^formats\[0\]\.model:/],
    [{ type: "json", schema: [1] }, /^formats\[0\]\.schema:/],
    [{ type: "json", schema: { type: "object", properties: { a: { type: "nope" } } } }, /^schema:/],
    [{ type: "json", prompt: "x".repeat(4001) }, /^prompt:/],
  ])("refuses %j with 400 naming the field, nothing reserved", async (entry, m) => {
    const { apiKey } = await newAccount(100);
    const { aiEnv } = fakeAi({});
    const r = await create(aiEnv, apiKey, { urls: ["https://example.com/a"], formats: [entry] });
    expect(r.status).toBe(400);
    expect(r.body.success).toBe(false);
    expect(r.body.error).toMatch(m);
    expect(await getCredits(apiKey)).toMatchObject({ balance: 100, reserved: 0 });
  });

  it("refuses json listed twice", async () => {
    const { apiKey } = await newAccount(100);
    const { aiEnv } = fakeAi({});
    const r = await create(aiEnv, apiKey, {
      urls: ["https://example.com/a"],
      formats: [
        { type: "json", prompt: "a" },
        { type: "json", prompt: "b" },
      ],
    });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatch(/^formats\[1\]: "json" is listed twice/);
  });
});

describe("onlyMainContent", () => {
  it.each([
    ["omitted (Firecrawl's default)", {}, true],
    ["true", { onlyMainContent: true }, true],
    ["false", { onlyMainContent: false }, false],
  ])("%s reaches the lease; the document leaves out nav and footer only when on", async (_name, extra, on) => {
    const { apiKey } = await newAccount(100);
    const created = await create(env as Env, apiKey, {
      urls: ["https://example.com/a"],
      formats: ["markdown", "html", "rawHtml"],
      ...extra,
    });
    expect(created.status).toBe(200);
    const { lease } = await runFirst(created.body.id, env as Env);
    expect(lease.mainContentOnly).toBe(on);
    const doc = (await status(apiKey, created.body.id)).body.data[0];
    expect(doc.markdown).toContain("A widget costs 12 euros.");
    expect(doc.html).toContain("A widget costs 12 euros.");
    expect(doc.html.includes("Home menu")).toBe(!on);
    expect(doc.html.includes("Footer small print")).toBe(!on);
    expect(doc.rawHtml).toBe(PAGE); // the page as fetched, whatever onlyMainContent says
    // Our markdown prefers <main> either way; with main content only it has nothing else.
    expect(doc.markdown).not.toContain("Home menu");
  });
});

describe("an /api batch with AI, read on /v2", () => {
  /** POST /api/batch/scrape with this env. */
  async function createApi(testEnv: Env, apiKey: string, body: unknown) {
    const res = await createApp().request(
      "/api/batch/scrape",
      { method: "POST", headers: keyHeaders(apiKey), body: JSON.stringify(body) },
      testEnv,
    );
    return readAnswer(res);
  }

  it("a json output's answer (inline) is the document's json", async () => {
    const { apiKey } = await newAccount(100);
    const answer = { product: "Widget", price: 12 };
    const { aiEnv } = fakeAi(answer);
    const created = await createApi(aiEnv, apiKey, { urls: ["https://example.com/a"], schema: SCHEMA });
    expect(created.status).toBe(202);
    await runFirst(created.body.batchId, aiEnv);
    const doc = (await status(apiKey, created.body.batchId)).body.data[0];
    expect(doc).toEqual({
      json: answer,
      metadata: { sourceURL: "https://example.com/a", url: "https://example.com/a", statusCode: 200 },
    });
  });

  it("a markdown output's text answer (too big to be inline, read from R2) is the document's markdown", async () => {
    const { apiKey } = await newAccount(100);
    const text = `Summary. ${"word ".repeat(2000)}`.trim();
    const { aiEnv } = fakeAi(text);
    const created = await createApi(aiEnv, apiKey, {
      urls: ["https://example.com/a"],
      output: "markdown",
      prompt: "Summarise",
    });
    expect(created.status).toBe(202);
    const { outcome } = await runFirst(created.body.batchId, aiEnv);
    expect(outcome).toMatchObject({ ok: true, inline: null });
    const doc = (await status(apiKey, created.body.batchId)).body.data[0];
    expect(Object.keys(doc).sort()).toEqual(["markdown", "metadata"]);
    expect(doc.markdown).toBe(text);
  });
});
