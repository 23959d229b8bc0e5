/**
 * The JSON view of a scraped page: metadata, outgoing links, visible text, and the text
 * of elements matched by caller-supplied CSS selectors.
 */
import { validateSelector } from "../lib/css-selector";
import { WORK, WorkBudget } from "./budget";
import { descendants, documentBase, findFirst, parseHtml, rawText, resolveUrl, type HtmlElement } from "./html-tree";
import { collapseWhitespace, utf8Length } from "./text";
import { VisibleText } from "./visible-text";
import { contentRoot } from "./extract-markdown";

export interface PageJson {
  url: string;
  finalUrl: string;
  statusCode: number;
  /** `<title>`, whitespace collapsed; null when absent or empty. */
  title: string | null;
  /** `<meta name="description">`, else `og:description`; null when neither is there. */
  description: string | null;
  /** `<html lang>`; null when absent. */
  lang: string | null;
  /** Absolute http(s) targets of `<a href>`, de-duplicated, in document order. */
  links: string[];
  /** Visible text of the body, whitespace collapsed, at most MAX_TEXT_CHARS long. */
  text: string;
  /** For each requested name, the text of every matching element, in document order. */
  selectors: Record<string, string[]>;
}

export interface PageInfo {
  url: string;
  finalUrl: string;
  statusCode: number;
}

export const MAX_TEXT_CHARS = 100_000;

/** Cuts `text` to `max` UTF-16 units without splitting a surrogate pair. */
function capText(text: string, max: number): string {
  if (text.length <= max) return text;
  const last = text.charCodeAt(max - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max);
}

export function metaContent(
  root: HtmlElement,
  key: "name" | "property",
  value: string,
  budget: WorkBudget,
): string | null {
  const meta = findFirst(
    root,
    (el) => el.name === "meta" && el.attrs.get(key)?.trim().toLowerCase() === value,
    undefined,
    budget,
  );
  const content = collapseWhitespace(meta?.attrs.get("content") ?? "");
  return content === "" ? null : content;
}

/** Absolute http(s) targets of `<a href>`, each counted into the result as it is added. */
export function pageLinks(root: HtmlElement, base: string, budget: WorkBudget): string[] {
  const links = new Set<string>();
  for (const el of descendants(root, undefined, budget)) {
    const href = el.name === "a" ? el.attrs.get("href")?.trim() : undefined;
    // An empty or fragment-only href points back at this page.
    if (!href || href.startsWith("#")) continue;
    const url = resolveUrl(href, base);
    if (url && !links.has(url)) {
      budget.step(url.length * WORK.char);
      budget.output(utf8Length(url));
      links.add(url);
    }
  }
  return [...links];
}

/** Each selector's matches' text, counted into its own budget and the result's as it is made; a pause after each selector. */
async function selectorTexts(
  names: string[],
  matches: Map<string, HtmlElement[]>,
  visible: VisibleText,
  budget: WorkBudget,
): Promise<Record<string, string[]>> {
  const entries: [string, string[]][] = [];
  for (const name of names) {
    const texts = (matches.get(name) ?? []).map((el) => {
      const text = visible.of(el);
      // At least one byte per UTF-16 unit: a text longer than the limit fails before it is scanned.
      budget.selectorOutput(name, text.length);
      budget.step(text.length * WORK.char);
      const extra = utf8Length(text) - text.length;
      if (extra > 0) budget.selectorOutput(name, extra);
      return text;
    });
    entries.push([name, texts]);
    await budget.pause();
  }
  // fromEntries, not assignment: a selector named `__proto__` must stay an ordinary key.
  return Object.fromEntries(entries);
}

/**
 * Builds the JSON view of `html`. Selectors that `validateSelector` rejects get an empty
 * list rather than failing the page; the API is expected to have refused them already.
 * Throws the budget's ExtractionLimitError when the page passes a limit.
 */
export async function extractJson(
  html: string,
  page: PageInfo,
  selectors: Readonly<Record<string, string>> = {},
  budget: WorkBudget = new WorkBudget(),
  /** Text and links from the main content only (`<main>`, else the one `<article>`, else the body), as Markdown does. */
  options: { mainOnly?: boolean } = {},
): Promise<PageJson> {
  const valid = Object.fromEntries(Object.entries(selectors).filter(([, sel]) => validateSelector(sel) === null));
  const { root, matches } = await parseHtml(html, valid, budget);
  await budget.pause();

  const titleEl = findFirst(root, (el) => el.name === "title", new Set(["svg"]), budget);
  const title = titleEl ? collapseWhitespace(rawText(titleEl, budget)) : "";
  const lang = findFirst(root, (el) => el.name === "html", undefined, budget)
    ?.attrs.get("lang")
    ?.trim();
  const body = options.mainOnly
    ? contentRoot(root, budget)
    : (findFirst(root, (el) => el.name === "body", undefined, budget) ?? root);
  const description =
    metaContent(root, "name", "description", budget) ?? metaContent(root, "property", "og:description", budget);
  await budget.pause();
  const links = pageLinks(options.mainOnly ? body : root, documentBase(root, page.finalUrl, budget), budget);
  await budget.pause();

  const visible = new VisibleText(budget);
  const text = capText(visible.of(body), MAX_TEXT_CHARS);
  budget.output(utf8Length(text));
  await budget.pause();
  const found = await selectorTexts(Object.keys(selectors), matches, visible, budget);

  return {
    url: page.url,
    finalUrl: page.finalUrl,
    statusCode: page.statusCode,
    title: title === "" ? null : title,
    description,
    lang: lang ? lang : null,
    links,
    text,
    selectors: found,
  };
}
