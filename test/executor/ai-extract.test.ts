/**
 * The prompt path in workerd with a fake Workers AI binding (Workers AI has no local
 * simulation): what the model is asked, how its answer is checked against the schema, and
 * each failure's item error (docs/ai-extraction.md).
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { chargeFor } from "../../src/domain/charging";
import type { AiExtraction } from "../../src/domain/executor-contract";
import type { Env } from "../../src/env";
import { runItem } from "../../src/executor/run-item";
import news from "../fixtures/html/news-consent.html?raw";

const URL_ = "https://news.example.com/story";
const MODEL = "@cf/test/fake-model";
const SCHEMA = {
  type: "object",
  properties: { headline: { type: "string" }, author: { type: ["string", "null"] }, votesFor: { type: "integer" } },
  required: ["headline", "votesFor"],
  additionalProperties: false,
};

type Call = { model: string; inputs: any };

/** A fake AI binding: the binding's `run(model, inputs)`, answering with `answer` (or throwing it), recording calls. */
function fakeAi(answer: unknown | (() => never)) {
  const calls: Call[] = [];
  const binding = {
    run: async (model: string, inputs: unknown) => {
      calls.push({ model, inputs });
      if (typeof answer === "function") (answer as () => never)();
      return answer;
    },
  };
  return { calls, binding: binding as unknown as Ai };
}

function aiEnv(binding: Ai | undefined, vars: Partial<Env> = {}): Env {
  return { ...env, AI: binding, AI_ENABLED: "true", AI_MODEL: MODEL, ...vars } as Env;
}

const serve =
  (html: string): typeof fetch =>
  async () =>
    new Response(html, { headers: { "content-type": "text/html; charset=utf-8" } });

function lease(ai: AiExtraction, output: "json" | "markdown" = "json", mainContentOnly = false) {
  return {
    action: "run" as const,
    batchId: crypto.randomUUID(),
    itemId: crypto.randomUUID(),
    attempt: 1,
    url: URL_,
    output,
    selectors: null,
    leaseExpiresAt: Date.now() + 60_000,
    ai,
    mainContentOnly,
  };
}

const ASK = { prompt: "The headline, the author and the votes in favour", schema: SCHEMA };

describe("AI extraction: an answer that fits", () => {
  it("asks the configured model in JSON mode with the schema, the prompt and the page; stores the answer", async () => {
    const answer = { headline: "City council approves new cycle lanes", author: "Sam Okafor", votesFor: 9 };
    const { calls, binding } = fakeAi({ response: answer, usage: { prompt_tokens: 900, completion_tokens: 30 } });
    const item = lease(ASK);
    const outcome = await runItem(item, aiEnv(binding), serve(news));
    expect(outcome).toMatchObject({ ok: true });
    expect(outcome.ok && outcome.inline).toEqual({
      url: URL_,
      finalUrl: URL_,
      statusCode: 200,
      content: answer,
      ai: { model: MODEL, inputChars: expect.any(Number), inputTruncated: false },
    });
    expect(calls).toHaveLength(1);
    const { model, inputs } = calls[0]!;
    expect(model).toBe(MODEL);
    expect(inputs.response_format).toEqual({ type: "json_schema", json_schema: SCHEMA });
    expect(inputs.max_tokens).toBe(2048);
    expect(inputs.messages[0].role).toBe("system");
    expect(inputs.messages[1].content.startsWith(ASK.prompt)).toBe(true);
    expect(inputs.messages[1].content).toContain("Councillors voted 9-4");
    // The stored result is the same document.
    const stored = await env.RESULTS.get(`results/${item.batchId}/${item.itemId}`);
    expect(JSON.parse(await stored!.text())).toEqual(outcome.ok && outcome.inline);
  });

  it("takes an answer given as a JSON string", async () => {
    const { binding } = fakeAi({ response: JSON.stringify({ headline: "H", author: null, votesFor: 9 }) });
    const outcome = await runItem(lease(ASK), aiEnv(binding), serve(news));
    expect(outcome.ok && (outcome.inline as { content: unknown }).content).toEqual({
      headline: "H",
      author: null,
      votesFor: 9,
    });
  });

  it("without a schema asks for a JSON object (json_object)", async () => {
    const { calls, binding } = fakeAi({ response: { anything: ["goes"] } });
    const outcome = await runItem(lease({ prompt: "Anything", schema: null }), aiEnv(binding), serve(news));
    expect(outcome.ok).toBe(true);
    expect(calls[0]!.inputs.response_format).toEqual({ type: "json_object" });
  });

  it("markdown output: no JSON mode; the text answer is the content", async () => {
    const { calls, binding } = fakeAi({ response: "  - Cycle lanes approved 9-4\n" });
    const outcome = await runItem(
      lease({ prompt: "Summarise", schema: null }, "markdown"),
      aiEnv(binding),
      serve(news),
    );
    expect(outcome.ok && (outcome.inline as { content: unknown }).content).toBe("- Cycle lanes approved 9-4");
    expect(calls[0]!.inputs.response_format).toBeUndefined();
  });

  it("sends at most AI_MAX_INPUT_CHARS of page text, and the result says it was cut", async () => {
    const { calls, binding } = fakeAi({ response: { headline: "H", votesFor: 1 } });
    const outcome = await runItem(lease(ASK), aiEnv(binding, { AI_MAX_INPUT_CHARS: "200" }), serve(news));
    expect(outcome.ok && (outcome.inline as { ai: unknown }).ai).toEqual({
      model: MODEL,
      inputChars: 200,
      inputTruncated: true,
    });
    const page = calls[0]!.inputs.messages[1].content.split("---\n")[1];
    expect(page.length).toBe(200);
  });

  it("with extractContentOnly the model never sees the boilerplate", async () => {
    const { calls, binding } = fakeAi({ response: { headline: "H", votesFor: 1 } });
    await runItem(lease(ASK, "json", true), aiEnv(binding), serve(news));
    const sent = calls[0]!.inputs.messages[1].content;
    expect(sent).toContain("Councillors voted 9-4");
    expect(sent).not.toContain("MOST-READ-SIDEBAR");
  });
});

describe("AI extraction: failures", () => {
  it.each([
    [{ headline: "H", votesFor: "nine" }, "$.votesFor: expected integer, got string"],
    [{ headline: "H" }, 'missing required property "votesFor"'],
    [{ headline: "H", votesFor: 9, extra: true }, 'property "extra" is not allowed'],
    [["H", 9], "$: expected object, got array"],
    ["not json {", "not JSON"],
    [undefined, "not JSON"],
  ])(
    "an answer that does not fit (%j) fails AI_OUTPUT_INVALID, not retried, not charged, nothing stored",
    async (response, why) => {
      const { binding } = fakeAi({ response });
      const item = lease(ASK);
      const outcome = await runItem(item, aiEnv(binding), serve(news));
      expect(outcome).toMatchObject({ ok: false, retryable: false, error: { code: "AI_OUTPUT_INVALID" } });
      expect(!outcome.ok && outcome.error.message).toContain(why);
      expect(chargeFor("failed", "AI_OUTPUT_INVALID")).toBe("refund");
      expect(await env.RESULTS.head(`results/${item.batchId}/${item.itemId}`)).toBeNull();
    },
  );

  it("without a schema, an answer that is not an object fails AI_OUTPUT_INVALID", async () => {
    const { binding } = fakeAi({ response: [1, 2] });
    const outcome = await runItem(lease({ prompt: "x", schema: null }), aiEnv(binding), serve(news));
    expect(outcome).toMatchObject({ ok: false, error: { code: "AI_OUTPUT_INVALID" } });
  });

  it("markdown output with an empty answer fails AI_OUTPUT_INVALID", async () => {
    const { binding } = fakeAi({ response: "  " });
    const outcome = await runItem(lease({ prompt: "x", schema: null }, "markdown"), aiEnv(binding), serve(news));
    expect(outcome).toMatchObject({ ok: false, error: { code: "AI_OUTPUT_INVALID" } });
  });

  it("a model error fails AI_FAILED, retryable, with the model's message", async () => {
    const { binding } = fakeAi(() => {
      throw new Error("3040: Capacity temporarily exceeded, please try again.");
    });
    const outcome = await runItem(lease(ASK), aiEnv(binding), serve(news));
    expect(outcome).toMatchObject({ ok: false, retryable: true, error: { code: "AI_FAILED" } });
    expect(!outcome.ok && outcome.error.message).toContain("Capacity temporarily exceeded");
  });

  it.each([
    ["no binding", undefined, {}],
    ["AI_ENABLED not true", "binding", { AI_ENABLED: "false" }],
  ])(
    "AI turned off after create (%s) fails AI_UNAVAILABLE, not retried, the model never called",
    async (_l, has, vars) => {
      const { calls, binding } = fakeAi({ response: {} });
      const outcome = await runItem(lease(ASK), aiEnv(has ? binding : undefined, vars), serve(news));
      expect(outcome).toMatchObject({ ok: false, retryable: false, error: { code: "AI_UNAVAILABLE" } });
      expect(calls).toEqual([]);
    },
  );

  it("the page is fetched first: a page that fails to load never reaches the model", async () => {
    const { calls, binding } = fakeAi({ response: {} });
    const outcome = await runItem(lease(ASK), aiEnv(binding), async () => new Response("gone", { status: 404 }));
    expect(outcome).toMatchObject({ ok: false, error: { code: "HTTP_404" } });
    expect(calls).toEqual([]);
  });
});
