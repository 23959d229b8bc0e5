/**
 * Hostile pages against the extraction budget (src/executor/budget.ts). Every fixture is
 * made at the size the test needs (test/fixtures/hostile-pages.ts, shared with the bench). Each page either stops with the limit it passes
 * (named, with its value) or completes within the limits; linearity is shown by counting
 * the budget's work units while the input doubles, never by timing.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { resultKey } from "../../src/domain/executor-contract";
import type { Env } from "../../src/env";
import {
  DEFAULT_EXTRACTION_LIMITS,
  ExtractionLimitError,
  type ExtractionLimit,
  type ExtractionLimits,
  WorkBudget,
} from "../../src/executor/budget";
import { extractJson } from "../../src/executor/extract-json";
import { toMarkdown } from "../../src/executor/extract-markdown";
import { runItem } from "../../src/executor/run-item";
import { isSpaceAt, utf8Length } from "../../src/executor/text";
import {
  body,
  longAttribute,
  manyElements,
  manyEntities,
  NON_ASCII_SPACES,
  nested,
  PAGE,
  SPACES,
  TWENTY_SELECTORS,
  URL_,
  unicodeSpaces,
} from "../fixtures/hostile-pages";

const limits = (over: Partial<ExtractionLimits> = {}): ExtractionLimits => ({ ...DEFAULT_EXTRACTION_LIMITS, ...over });
const json = (html: string, budget: WorkBudget, selectors: Record<string, string> = {}) =>
  extractJson(html, PAGE, selectors, budget);
const markdown = (html: string, budget: WorkBudget) => toMarkdown(html, URL_, budget);

/** Runs `extract` and returns the limit error it must stop with, and the work done by then. */
async function stopped(extract: (budget: WorkBudget) => Promise<unknown>, over: Partial<ExtractionLimits>) {
  const budget = new WorkBudget(limits(over));
  const error = await extract(budget).then(
    () => null,
    (err: unknown) => err,
  );
  expect(error).toBeInstanceOf(ExtractionLimitError);
  return { error: error as ExtractionLimitError, work: budget.work };
}

/** The work units of a run that completes within the limits. */
async function workOf(
  extract: (budget: WorkBudget) => Promise<unknown>,
  over: Partial<ExtractionLimits> = {},
): Promise<number> {
  const budget = new WorkBudget(
    limits({
      maxElements: 10_000_000,
      maxTextBytes: 1e9,
      maxOutputBytes: 1e9,
      maxSelectorBytes: 1e9,
      timeoutMs: 1e9,
      ...over,
    }),
  );
  await extract(budget);
  return budget.work;
}

/** Work at sizes n, 2n, 4n, 8n grows at most linearly: each doubling at most doubles it (plus 5%). */
async function expectLinear(sizes: number[], work: (n: number) => Promise<number>): Promise<number[]> {
  const counts: number[] = [];
  for (const n of sizes) counts.push(await work(n));
  for (let k = 1; k < sizes.length; k++) {
    const grew = counts[k]! / counts[k - 1]!;
    const input = sizes[k]! / sizes[k - 1]!;
    expect({ size: sizes[k], grew: Number(grew.toFixed(2)) }).toEqual({
      size: sizes[k],
      grew: expect.toSatisfy((g: number) => g <= input * 1.05),
    });
  }
  return counts;
}

function expectLimit(error: ExtractionLimitError, limit: ExtractionLimit, value: number, var_: string) {
  expect({ limit: error.limit, value: error.value }).toEqual({ limit, value });
  expect(error.message).toContain(`(${var_} = ${value})`);
}

// ---- the limits ------------------------------------------------------------------------------

// Parsing goes through HTMLRewriter, slow in local workerd on a shared machine: generous timeouts, no timing asserts.
const SLOW = { timeout: 60_000 };

describe("hostile pages stop at the limit they pass, at once", SLOW, () => {
  it("many elements: EXTRACT_MAX_ELEMENTS, with the parse cut short (json and markdown)", async () => {
    const full = await workOf((b) => json(manyElements(10_000), b));
    for (const extract of [json, markdown]) {
      const { error, work } = await stopped((b) => extract(manyElements(10_000), b), { maxElements: 1_000 });
      expectLimit(error, "maxElements", 1_000, "EXTRACT_MAX_ELEMENTS");
      expect(error.message).toMatch(/more than 1000 elements/);
      // Stopped near the 1,000th element, not after parsing all 10,000.
      expect(work).toBeLessThan(full / 5);
    }
  });

  it("twenty selectors: every match is an element visit, so the same page passes the limit sooner", async () => {
    const page = manyElements(1_000);
    expect(await workOf((b) => json(page, b), { maxElements: 5_000 })).toBeGreaterThan(0);
    const { error } = await stopped((b) => json(page, b, TWENTY_SELECTORS), { maxElements: 5_000 });
    expectLimit(error, "maxElements", 5_000, "EXTRACT_MAX_ELEMENTS");
  });

  it("deep nesting with a `*` selector: EXTRACT_MAX_SELECTOR_BYTES, naming the selector", async () => {
    // 250 nested divs around 40 kB: every div's text is the whole 40 kB, 10 MB in all.
    const page = nested(250, `<p>${"word ".repeat(8_000)}</p>`);
    const { error } = await stopped((b) => json(page, b, { a: "*" }), { maxSelectorBytes: 1024 * 1024 });
    expectLimit(error, "maxSelectorBytes", 1024 * 1024, "EXTRACT_MAX_SELECTOR_BYTES");
    expect(error.message).toContain('selector "a"');
  });

  it("deep nesting with several `*` selectors: EXTRACT_MAX_OUTPUT_BYTES, the total over all of them", async () => {
    const page = nested(250, `<p>${"word ".repeat(800)}</p>`); // 4 kB x 250 = 1 MB a selector
    const { error } = await stopped((b) => json(page, b, { a: "*", b: "div", c: "body *" }), {
      maxOutputBytes: 2 * 1024 * 1024,
    });
    expectLimit(error, "maxOutputBytes", 2 * 1024 * 1024, "EXTRACT_MAX_OUTPUT_BYTES");
  });

  it("long attribute values: EXTRACT_MAX_TEXT_BYTES counts them with the text", async () => {
    const { error } = await stopped((b) => json(longAttribute(300_000), b), { maxTextBytes: 256 * 1024 });
    expectLimit(error, "maxTextBytes", 256 * 1024, "EXTRACT_MAX_TEXT_BYTES");
  });

  it("a page of text: EXTRACT_MAX_TEXT_BYTES counts UTF-8 bytes, so 3-byte characters reach it at a third of the length", async () => {
    const page = body(`<p>${"\u2603".repeat(40_000)}</p>`); // 40,000 units, 120,000 bytes
    const { error } = await stopped((b) => markdown(page, b), { maxTextBytes: 100_000 });
    expectLimit(error, "maxTextBytes", 100_000, "EXTRACT_MAX_TEXT_BYTES");
    expect(await workOf((b) => markdown(page, b), { maxTextBytes: 120_100 })).toBeGreaterThan(0);
  });

  it("markdown output over EXTRACT_MAX_OUTPUT_BYTES stops while rendering, before the rest is built", async () => {
    const page = body(`<p>${"para ".repeat(20)}</p>`.repeat(5_000)); // about 500 kB of Markdown
    const full = await workOf((b) => markdown(page, b));
    const { error, work } = await stopped((b) => markdown(page, b), { maxOutputBytes: 50_000 });
    expectLimit(error, "maxOutputBytes", 50_000, "EXTRACT_MAX_OUTPUT_BYTES");
    const parse = await workOf((b) => markdown(body(""), b));
    expect(work).toBeLessThan(full);
    expect(work).toBeGreaterThan(parse);
  });

  it("a table whose widest row pads every other row: stopped by the output limit before the padding is built", async () => {
    const wide = `<tr>${'<td colspan="50">x</td>'.repeat(200)}</tr>`; // 10,000 columns
    const page = body(`<table>${wide}${"<tr><td>y</td></tr>".repeat(2_000)}</table>`); // 2,001 rows x 30 kB
    const { error, work } = await stopped((b) => markdown(page, b), {});
    expectLimit(error, "maxOutputBytes", DEFAULT_EXTRACTION_LIMITS.maxOutputBytes, "EXTRACT_MAX_OUTPUT_BYTES");
    expect(work).toBeLessThan(1_000_000);
  });

  it("time: EXTRACT_TIMEOUT_MS, checked at each pause while the page is parsed", async () => {
    let clock = 0;
    const budget = new WorkBudget(limits({ timeoutMs: 50 }), {
      now: () => (clock += 1),
      pause: () => Promise.resolve(),
      sliceUnits: 1_000,
    });
    const error = await json(manyElements(10_000), budget).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ExtractionLimitError);
    expectLimit(error as ExtractionLimitError, "timeoutMs", 50, "EXTRACT_TIMEOUT_MS");
    expect((error as Error).message).toMatch(/took longer than 50 ms/);
    expect(budget.pauses).toBeGreaterThan(0);
    expect(budget.work).toBeLessThan(10_000 * 64);
  });
});

describe("hostile pages that stay within the limits complete", SLOW, () => {
  it("every kind of Unicode space collapses to one space, in Markdown and in JSON text", async () => {
    expect(NON_ASCII_SPACES.length).toBeGreaterThanOrEqual(17);
    for (const space of SPACES) {
      const page = body(`<p><b>x${space.repeat(3)}y</b> a${space}${space}b</p>`);
      const code = space.charCodeAt(0).toString(16);
      expect({ code, md: await toMarkdown(page, URL_) }).toEqual({ code, md: "# t\n\n**x y** a b\n" });
      expect({ code, text: (await extractJson(page, PAGE)).text }).toEqual({ code, text: "x y a b" });
    }
  });

  it("isSpaceAt agrees with \\s on every UTF-16 unit", () => {
    const disagree = Array.from({ length: 0x10000 }, (_, c) => c).filter(
      (c) => isSpaceAt(String.fromCharCode(c), 0) !== /\s/.test(String.fromCharCode(c)),
    );
    expect(disagree).toEqual([]);
  });

  it("64,000 em spaces inside bold: one space, and the result small", async () => {
    const md = await toMarkdown(unicodeSpaces(64_000), URL_);
    expect(md).toBe("# t\n\n**x x**\n");
  });

  it("many entities decode, and the text is within the limits", async () => {
    const result = await extractJson(manyEntities(10_000), PAGE);
    expect(result.text.startsWith("&A\u00e9 &A\u00e9 &A")).toBe(true);
    expect(result.text.length).toBe(40_000 - 1); // the last no-break space is trimmed
  });

  it("utf8Length counts bytes as UTF-8 does (pairs 4, lone surrogates 3)", () => {
    for (const text of [
      "",
      "abc",
      "\u00e9",
      "\u2603",
      "\ud83d\ude00",
      "a\ud800b",
      "\udc00",
      `x${"\u00e9\u2603\ud83d\ude00".repeat(10)}`,
    ]) {
      const encoded = new TextEncoder().encode(text).length;
      expect({ text, bytes: utf8Length(text) }).toEqual({ text, bytes: encoded });
    }
  });
});

// ---- linear work -------------------------------------------------------------------------------

describe("the work grows linearly with the input (counted in work units)", SLOW, () => {
  it("many elements, with twenty selectors", async () => {
    await expectLinear([500, 1_000, 2_000, 4_000], (n) => workOf((b) => json(manyElements(n), b, TWENTY_SELECTORS)));
  });

  it("Unicode spaces inside emphasis (the pattern that backtracked)", async () => {
    await expectLinear([8_000, 16_000, 32_000, 64_000], (n) => workOf((b) => markdown(unicodeSpaces(n), b)));
  });

  it("nesting depth under a `*` selector (each ancestor's text is not walked again)", async () => {
    // Blank content at every level: nothing to output, so all the work is walking.
    const page = (d: number) => body("<div><i> </i>".repeat(d) + "</div>".repeat(d));
    await expectLinear([30, 60, 120, 240], (d) => workOf((b) => json(page(d), b, { a: "*" })));
  });

  it("text under 250 nested elements with a `*` selector", async () => {
    await expectLinear([1_000, 2_000, 4_000, 8_000], (n) =>
      workOf((b) => json(nested(250, `<p>${"w ".repeat(n)}</p>`), b, { a: "*" })),
    );
  });

  it("long attribute values", async () => {
    await expectLinear([50_000, 100_000, 200_000, 400_000], (n) => workOf((b) => json(longAttribute(n), b)));
  });

  it("many entities", async () => {
    await expectLinear([2_000, 4_000, 8_000, 16_000], (n) => workOf((b) => markdown(manyEntities(n), b)));
  });

  it.each(["blockquote", "ul", "b", "a", "span", "table"])(
    "nested <%s> with text at every level (Markdown)",
    async (tag) => {
      const level =
        tag === "ul"
          ? "<li>item "
          : tag === "table"
            ? "<tr><td>cell "
            : tag === "a"
              ? '<a href="/x">link '
              : `<${tag}>text `;
      const close = tag === "ul" ? "</li></ul>" : tag === "table" ? "</td></tr></table>" : `</${tag}>`;
      const open = tag === "ul" ? "<ul>" : tag === "table" ? "<table>" : "";
      const page = (d: number) => body(`${`${open}${level}`.repeat(d)}end${close.repeat(d)}`);
      await expectLinear([32, 64, 128, 256], (d) => workOf((b) => markdown(page(d), b)));
    },
  );
});

describe(
  "runItem: a page over a limit fails EXTRACTION_LIMIT (not retryable) and stores nothing; the rest stays under the output limit",
  SLOW,
  () => {
    const lease = (output: "json" | "markdown", selectors: Record<string, string> | null) => ({
      action: "run" as const,
      batchId: crypto.randomUUID(),
      itemId: crypto.randomUUID(),
      attempt: 1,
      url: URL_,
      output,
      selectors,
      leaseExpiresAt: Date.now() + 60_000,
    });
    const serve =
      (html: string): typeof fetch =>
      async () =>
        new Response(html, { headers: { "content-type": "text/html" } });
    const deepText = nested(250, `<p>${"word ".repeat(8_000)}</p>`); // `*`: 250 x 40 kB

    it("deep nesting with `*` (the 103 MB result): stopped at the selector limit, nothing stored", async () => {
      const item = lease("json", { a: "*" });
      const outcome = await runItem(item, env as Env, serve(deepText));
      expect(outcome).toMatchObject({ ok: false, retryable: false, error: { code: "EXTRACTION_LIMIT" } });
      expect(!outcome.ok && outcome.error.message).toContain(
        `EXTRACT_MAX_SELECTOR_BYTES = ${DEFAULT_EXTRACTION_LIMITS.maxSelectorBytes}`,
      );
      expect(await env.RESULTS.head(resultKey(item.batchId, item.itemId))).toBeNull();
    });

    it.each([
      ["json, a selector that matches once", "json", { a: "p" }, {}],
      ["markdown", "markdown", null, {}],
      [
        "json `*` under a raised selector limit",
        "json",
        { a: "*" },
        { EXTRACT_MAX_SELECTOR_BYTES: "20000000", EXTRACT_MAX_OUTPUT_BYTES: "12000000" },
      ],
    ] as const)(
      "%s: completes, and the stored result is within EXTRACT_MAX_OUTPUT_BYTES",
      async (_name, output, selectors, vars) => {
        const item = lease(output, selectors);
        const outcome = await runItem(item, { ...env, ...vars } as Env, serve(deepText));
        expect(outcome.ok).toBe(true);
        const stored = await env.RESULTS.get(resultKey(item.batchId, item.itemId));
        const cap = Number(
          (vars as Record<string, string>).EXTRACT_MAX_OUTPUT_BYTES ?? DEFAULT_EXTRACTION_LIMITS.maxOutputBytes,
        );
        expect(stored).not.toBeNull();
        expect(stored!.size).toBeGreaterThan(0);
        expect(stored!.size).toBeLessThanOrEqual(cap);
      },
    );

    it("the output limit from the vars: the same page over a lowered EXTRACT_MAX_OUTPUT_BYTES fails and stores nothing", async () => {
      const item = lease("markdown", null);
      const outcome = await runItem(item, { ...env, EXTRACT_MAX_OUTPUT_BYTES: "10000" } as Env, serve(deepText));
      expect(outcome).toMatchObject({
        ok: false,
        retryable: false,
        error: { code: "EXTRACTION_LIMIT", message: expect.stringContaining("EXTRACT_MAX_OUTPUT_BYTES = 10000") },
      });
      expect(await env.RESULTS.head(resultKey(item.batchId, item.itemId))).toBeNull();
    });
  },
);
