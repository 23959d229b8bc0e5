/**
 * Extraction of hostile pages (issue 13), each beside a plain page of the same size and
 * output format, measured in the same run (sandwiched: plain, hostile, plain, ...):
 * - growing sizes (1x, 2x, 4x): the ratio to the plain page should stay flat (linear work)
 *   or fall (the budget stops the page at a fixed point);
 * - the three holes as reproduced against `wrangler dev`, at their sizes, with the
 *   default limits: how long until the item completes or stops, and how it ends;
 * - the longest time the event loop waited for a turn while a hostile page was extracted
 *   (the budget pauses between slices of work), beside the same for the plain page.
 * Local workerd only: see the timing caveat in bench/support.ts.
 */
import { describe, expect, it } from "vitest";
import { ExtractionLimitError, WorkBudget } from "../src/executor/budget";
import { extractJson } from "../src/executor/extract-json";
import { toMarkdown } from "../src/executor/extract-markdown";
import { body, longAttribute, nested, PAGE, TWENTY_SELECTORS, URL_ } from "../test/fixtures/hostile-pages";
import type { BenchRow } from "./result";
import { row } from "./result";
import { sandwich, timed } from "./support";

const SIZES = [50_000, 100_000, 200_000];
const REPS = 2;

type Format = "json" | "markdown";
interface Hostile {
  name: string;
  format: Format;
  selectors?: Record<string, string>;
  page: (bytes: number) => string;
}

const fill = (unit: string, bytes: number) => unit.repeat(Math.max(1, Math.floor(bytes / unit.length)));

/** An ordinary article: paragraphs of words with a link and some emphasis. */
const plainPage = (bytes: number) =>
  body(
    fill(
      '<p>The river fell to a record low this week, <a href="/news/1">say officials</a>, and <b>farmers</b> are worried.</p>\n',
      bytes,
    ),
  );

const HOSTILE: Hostile[] = [
  { name: "many elements", format: "json", page: (n) => body(fill("<i>a</i>", n)) },
  {
    name: "many elements, 20 selectors",
    format: "json",
    selectors: TWENTY_SELECTORS,
    page: (n) => body(fill("<i>a</i>", n)),
  },
  { name: "em spaces inside bold", format: "markdown", page: (n) => body(`<p><b>x${fill("\u2003", n / 3)}x</b></p>`) },
  {
    name: "250 nested divs, `*` selector",
    format: "json",
    selectors: { a: "*" },
    page: (n) => nested(250, `<p>${fill("word ", n)}</p>`),
  },
  { name: "one long attribute", format: "json", page: longAttribute },
  { name: "many entities", format: "markdown", page: (n) => body(`<p>${fill("&amp;&eacute;", n)}</p>`) },
  {
    name: "nested quotes with text",
    format: "markdown",
    page: (n) => body(`${fill("<blockquote>quoted text ", n / 2)}</blockquote>`),
  },
  {
    name: "wide table padding every row",
    format: "markdown",
    page: (n) =>
      body(`<table><tr>${'<td colspan="50">x</td>'.repeat(200)}</tr>${fill("<tr><td>y</td></tr>", n)}</table>`),
  },
];

/** Extracts with the default limits; answers how it ended ("ok" or the limit passed). */
async function extract(html: string, format: Format, selectors?: Record<string, string>): Promise<string> {
  const budget = new WorkBudget();
  try {
    if (format === "json") await extractJson(html, PAGE, selectors ?? {}, budget);
    else await toMarkdown(html, URL_, budget);
    return "ok";
  } catch (err) {
    if (err instanceof ExtractionLimitError) return `stopped: ${err.limit}`;
    throw err;
  }
}

async function ms(html: string, format: Format, selectors?: Record<string, string>): Promise<number> {
  return (await timed(() => extract(html, format, selectors))).ms;
}

/** The longest wait of a timer loop running beside `work`: how long other work could be held up. */
async function longestGap(work: () => Promise<unknown>): Promise<number> {
  let done = false;
  let longest = 0;
  const ticker = (async () => {
    while (!done) {
      const t0 = performance.now();
      await scheduler.wait(1);
      longest = Math.max(longest, performance.now() - t0 - 1);
    }
  })();
  await work();
  done = true;
  await ticker;
  return longest;
}

describe("extraction of hostile pages", () => {
  it("time beside a plain page of the same size, at growing sizes", async ({ task }) => {
    const rows: BenchRow[] = [];
    const details: Record<string, unknown> = {};
    for (const h of HOSTILE) {
      for (const bytes of SIZES) {
        const hostile = h.page(bytes);
        const plain = plainPage(hostile.length);
        const ending = await extract(hostile, h.format, h.selectors);
        const result = await sandwich(REPS, () => ms(plain, h.format), {
          hostile: () => ms(hostile, h.format, h.selectors),
        });
        details[`${h.name} ${bytes}`] = { ending, result };
        rows.push(
          row({
            section: "extract",
            what: `${h.name} (${h.format}), ${Math.round(hostile.length / 1000)} kB`,
            value: result.subjects.hostile.value,
            unit: "ms",
            baseline: `plain ${h.format} page, same size`,
            baselineValue: result.baseline,
            ratio: result.subjects.hostile.ratio,
            note: ending,
          }),
        );
      }
    }
    task.meta.bench = { rows, details };
  });

  it("the three reproduced holes, default limits", async ({ task }) => {
    const holes: [string, Format, Record<string, string> | undefined, string][] = [
      ["100,000 <i>a</i> (781 kB), json", "json", undefined, body("<i>a</i>".repeat(100_000))],
      [
        "<b>x + 64,000 em spaces + x</b>, markdown",
        "markdown",
        undefined,
        body(`<p><b>x${"\u2003".repeat(64_000)}x</b></p>`),
      ],
      [
        "250 nested divs around 400 kB, `*` selector, json",
        "json",
        { a: "*" },
        body(`${"<div>".repeat(250)}<p>${"word ".repeat(80_000)}</p>${"</div>".repeat(250)}`),
      ],
    ];
    const rows: BenchRow[] = [];
    const details: Record<string, unknown> = {};
    for (const [what, format, selectors, html] of holes) {
      const ending = await extract(html, format, selectors);
      const plain = plainPage(html.length);
      const result = await sandwich(REPS, () => ms(plain, format), { hole: () => ms(html, format, selectors) });
      const gap = await longestGap(() => extract(html, format, selectors));
      const plainGap = await longestGap(() => extract(plain, format));
      details[what] = { ending, result, gap, plainGap };
      rows.push(
        row({
          section: "extract",
          what: `hole: ${what}`,
          value: result.subjects.hole.value,
          unit: "ms",
          baseline: `plain ${format} page, same size`,
          baselineValue: result.baseline,
          ratio: result.subjects.hole.ratio,
          note: ending,
        }),
      );
      rows.push(
        row({
          section: "extract",
          what: `hole: ${what}: longest event-loop wait`,
          value: gap,
          unit: "ms",
          baseline: "the same, plain page",
          baselineValue: Math.max(plainGap, 0.001),
          note: "others wait at most this long for a turn",
        }),
      );
    }
    expect(rows.length).toBe(6);
    task.meta.bench = { rows, details };
  });
});
