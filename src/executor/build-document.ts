/**
 * Builds a `document` result (Firecrawl's page document): the parts the batch asked for
 * (markdown, html, rawHtml, links) and the page's metadata, from one parse of the page and
 * under its one WorkBudget, whatever the number of parts. includeTags and excludeTags are
 * CSS selectors matched by the parser (HTMLRewriter) itself.
 */
import type { PageDocument } from "../domain/page-document";
import type { DocumentFormat, ScrapeOptions } from "../domain/scrape-options";
import { type WorkBudget, WORK } from "./budget";
import { validateSelector } from "../lib/css-selector";
import { type PageInfo, metaContent, pageLinks } from "./extract-json";
import { markdownOf } from "./extract-markdown";
import { documentBase, findFirst, type HtmlElement, parseHtml, rawText } from "./html-tree";
import { serializeHtml } from "./html-serialize";
import { collapseWhitespace, utf8Length } from "./text";

const DEFAULT_FORMATS: readonly DocumentFormat[] = ["markdown"];

export async function buildDocument(
  html: string,
  page: PageInfo,
  options: ScrapeOptions | null,
  budget: WorkBudget,
  /** The page as fetched, for rawHtml, when `html` is already cut to its main content. */
  rawHtml: string = html,
): Promise<PageDocument> {
  // Empty when the json format (AI, run-item.ts) is the only one asked for.
  const formats = new Set(options?.formats ?? DEFAULT_FORMATS);
  const include = (options?.includeTags ?? []).filter((s) => validateSelector(s) === null);
  const exclude = (options?.excludeTags ?? []).filter((s) => validateSelector(s) === null);
  const watch: Record<string, string> = {};
  for (const [i, selector] of include.entries()) watch[`include${i}`] = selector;
  for (const [i, selector] of exclude.entries()) watch[`exclude${i}`] = selector;
  const { root, matches } = await parseHtml(html, watch, budget);
  await budget.pause();

  const metadata = pageMetadata(root, page, budget);
  const picked = (prefix: string, n: number) =>
    Array.from({ length: n }, (_, i) => matches.get(`${prefix}${i}`) ?? []).flat();
  const content = filtered(
    root,
    include.length > 0 ? picked("include", include.length) : null,
    new Set(picked("exclude", exclude.length)),
    budget,
  );
  await budget.pause();

  const doc: PageDocument = { metadata };
  if (formats.has("markdown")) doc.markdown = await markdownOf(content, page.finalUrl, budget);
  if (formats.has("html")) {
    const body = findFirst(content, (el) => el.name === "body", undefined, budget) ?? content;
    doc.html = await serializeHtml(body.children, budget);
  }
  if (formats.has("rawHtml")) {
    budget.step(rawHtml.length * WORK.char);
    budget.output(utf8Length(rawHtml));
    doc.rawHtml = rawHtml;
  }
  if (formats.has("links")) doc.links = pageLinks(content, documentBase(root, page.finalUrl, budget), budget);
  return doc;
}

/** Title, description and language from the whole page (whatever the filters keep). */
function pageMetadata(root: HtmlElement, page: PageInfo, budget: WorkBudget): PageDocument["metadata"] {
  const titleEl = findFirst(root, (el) => el.name === "title", new Set(["svg"]), budget);
  const title = titleEl ? collapseWhitespace(rawText(titleEl, budget)) : "";
  const description =
    metaContent(root, "name", "description", budget) ?? metaContent(root, "property", "og:description", budget);
  const language = findFirst(root, (el) => el.name === "html", undefined, budget)
    ?.attrs.get("lang")
    ?.trim();
  return {
    sourceURL: page.url,
    url: page.finalUrl,
    statusCode: page.statusCode,
    ...(title ? { title } : {}),
    ...(description ? { description } : {}),
    ...(language ? { language } : {}),
  };
}

/**
 * The tree the parts are built from. Excluded elements go (with their content); with
 * includeTags, only the outermost included elements still present stay, in document order,
 * under a new body. Every parent walk counts against the budget.
 */
function filtered(
  root: HtmlElement,
  included: HtmlElement[] | null,
  excluded: Set<HtmlElement>,
  budget: WorkBudget,
): HtmlElement {
  const byParent = new Map<HtmlElement, true>();
  for (const el of excluded) if (el.parent) byParent.set(el.parent, true);
  for (const parent of byParent.keys()) {
    budget.step(parent.children.length * WORK.node);
    parent.children = parent.children.filter((child) => child.kind === "text" || !excluded.has(child));
  }
  if (included === null) return root;
  const chosen = new Set(included);
  const kept: HtmlElement[] = [];
  const seen = new Set<HtmlElement>();
  for (const el of included) {
    if (seen.has(el)) continue; // matched by two selectors
    seen.add(el);
    let keep = !excluded.has(el);
    for (let up = el.parent; keep && up !== null; up = up.parent) {
      budget.step(WORK.node);
      if (chosen.has(up) || excluded.has(up)) keep = false;
    }
    if (keep) kept.push(el);
  }
  const document: HtmlElement = { kind: "element", name: "#document", attrs: new Map(), children: [], parent: null };
  const body: HtmlElement = { kind: "element", name: "body", attrs: new Map(), children: kept, parent: document };
  document.children.push(body);
  return document;
}
