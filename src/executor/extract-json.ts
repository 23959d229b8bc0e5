/**
 * The JSON view of a scraped page: metadata, outgoing links, visible text, and the text
 * of elements matched by caller-supplied CSS selectors.
 */
import {
  BLOCK_ELEMENTS,
  collapseWhitespace,
  descendants,
  documentBase,
  findFirst,
  parseHtml,
  rawText,
  resolveUrl,
  type HtmlElement,
} from "./html-tree";

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

/** Never visible: their text is left out of `text` and selector results. */
const INVISIBLE: ReadonlySet<string> = new Set([
  "script", "style", "noscript", "template", "svg", "iframe", "object", "head", "title",
]);

/**
 * Why HTMLRewriter would refuse `selector`, or null if it accepts it. It throws when a
 * handler is registered, so this registers one on a throwaway rewriter. Unsupported
 * there: `+`, `~`, `:last-child`, `:has()` and pseudo-elements, among others.
 */
export function validateSelector(selector: string): string | null {
  try {
    new HTMLRewriter().on(selector, {});
    return null;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}

/** Text a reader sees under `node`: blocks and `<br>` separate words, hidden parts are skipped. */
export function visibleText(node: HtmlElement): string {
  const parts: string[] = [];
  const walk = (el: HtmlElement): void => {
    for (const child of el.children) {
      if (child.kind === "text") {
        parts.push(child.text);
      } else if (!INVISIBLE.has(child.name)) {
        const breaks = child.name === "br" || BLOCK_ELEMENTS.has(child.name);
        if (breaks) parts.push(" ");
        walk(child);
        if (breaks) parts.push(" ");
      }
    }
  };
  walk(node);
  return collapseWhitespace(parts.join(""));
}

/** Cuts `text` to `max` UTF-16 units without splitting a surrogate pair. */
function capText(text: string, max: number): string {
  if (text.length <= max) return text;
  const last = text.charCodeAt(max - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? max - 1 : max);
}

function metaContent(root: HtmlElement, key: "name" | "property", value: string): string | null {
  const meta = findFirst(root, (el) => el.name === "meta" && el.attrs.get(key)?.trim().toLowerCase() === value);
  const content = collapseWhitespace(meta?.attrs.get("content") ?? "");
  return content === "" ? null : content;
}

function pageLinks(root: HtmlElement, base: string): string[] {
  const links = new Set<string>();
  for (const el of descendants(root)) {
    const href = el.name === "a" ? el.attrs.get("href")?.trim() : undefined;
    // An empty or fragment-only href points back at this page.
    if (!href || href.startsWith("#")) continue;
    const url = resolveUrl(href, base);
    if (url) links.add(url);
  }
  return [...links];
}

/**
 * Builds the JSON view of `html`. Selectors that `validateSelector` rejects get an empty
 * list rather than failing the page; the API is expected to have refused them already.
 */
export async function extractJson(
  html: string,
  page: PageInfo,
  selectors: Readonly<Record<string, string>> = {},
): Promise<PageJson> {
  const valid = Object.fromEntries(Object.entries(selectors).filter(([, sel]) => validateSelector(sel) === null));
  const { root, matches } = await parseHtml(html, valid);

  const titleEl = findFirst(root, (el) => el.name === "title", new Set(["svg"]));
  const title = titleEl ? collapseWhitespace(rawText(titleEl)) : "";
  const lang = findFirst(root, (el) => el.name === "html")?.attrs.get("lang")?.trim();
  const body = findFirst(root, (el) => el.name === "body") ?? root;

  // fromEntries, not assignment: a selector named `__proto__` must stay an ordinary key.
  const found = Object.fromEntries(Object.keys(selectors).map((name) => [name, (matches.get(name) ?? []).map(visibleText)]));

  return {
    url: page.url,
    finalUrl: page.finalUrl,
    statusCode: page.statusCode,
    title: title === "" ? null : title,
    description: metaContent(root, "name", "description") ?? metaContent(root, "property", "og:description"),
    lang: lang ? lang : null,
    links: pageLinks(root, documentBase(root, page.finalUrl)),
    text: capText(visibleText(body), MAX_TEXT_CHARS),
    selectors: found,
  };
}
