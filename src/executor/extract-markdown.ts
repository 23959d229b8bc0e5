/**
 * The page's main content as Markdown (CommonMark, GitHub pipe tables): parse to a tree,
 * then render with plain recursive functions. Block renderers return a list of blocks,
 * joined by one blank line, so runs of blank lines cannot appear outside code blocks.
 *
 * Content root: `<main>` (or role=main), else the only top-level `<article>`, else the
 * body. Inside it nav, aside and footer are dropped; a `<header>` is kept, as inside an
 * article it holds the headline.
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
  type HtmlNode,
} from "./html-tree";

/** Never rendered: code, embeds, form controls, head matter and page chrome. */
const DROPPED: ReadonlySet<string> = new Set([
  "script", "style", "noscript", "template", "svg", "math", "iframe", "object", "embed", "canvas", "head",
  "title", "input", "button", "select", "textarea", "option", "datalist", "output", "progress", "meter",
  "dialog", "nav", "aside", "footer",
]);
const NOT_IN_SVG: ReadonlySet<string> = new Set(["svg"]);
const LINK_SCHEMES: ReadonlySet<string> = new Set(["http:", "https:", "mailto:", "tel:"]);
/** Stands for `<br>` while inline text is built; NUL cannot survive in text (see `inline`). */
const BR = "\u0000";
const LIST_START = /^(?:-|\d{1,9}\.)(?: |$)/;

interface Ctx {
  /** Base for relative URLs. */
  base: string;
  /** An element already rendered elsewhere: the h1 used as the title. */
  skip: HtmlElement | null;
}

const isDropped = (el: HtmlElement, ctx: Ctx): boolean => DROPPED.has(el.name) || el.attrs.has("hidden") || el === ctx.skip;

/** Backslash-escapes what would otherwise read as Markdown syntax inside a line. */
const escapeText = (text: string): string =>
  text.replace(/[\\`*[\]]|<(?=[A-Za-z/!?])|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])/g, "\\$&");

/** Escapes a line that would start a heading, list, quote or setext underline. */
function escapeLineStart(line: string): string {
  const number = /^\d{1,9}(?=[.)](\s|$))/.exec(line)?.[0];
  if (number) return `${number}\\${line.slice(number.length)}`;
  return /^(#{1,6}(\s|$)|[-+](\s|$)|>|(-+|=+)\s*$)/.test(line) ? `\\${line}` : line;
}

const longestBacktickRun = (text: string): number => (text.match(/`+/g) ?? []).reduce((max, run) => Math.max(max, run.length), 0);
/** Link and image targets: spaces and parentheses would end them early. */
const destination = (url: string): string => url.replace(/ /g, "%20").replace(/[()]/g, "\\$&");
/** Inline Markdown on a single line: headings, link text, table cells. */
const collapseLine = (markdown: string): string => markdown.replaceAll(BR, " ").replace(/ {2,}/g, " ").trim();
const inlineAll = (nodes: HtmlNode[], ctx: Ctx): string => nodes.map((node) => inline(node, ctx)).join("");

function emphasis(marker: string, text: string): string {
  const [, lead = "", core = "", trail = ""] = /^([\s\0]*)([\s\S]*?)([\s\0]*)$/.exec(text) ?? [];
  return core ? `${lead}${marker}${core}${marker}${trail}` : text;
}

function codeSpan(code: string): string {
  if (!code) return "";
  const fence = "`".repeat(longestBacktickRun(code) + 1);
  const pad = code.startsWith("`") || code.endsWith("`") ? " " : "";
  return `${fence}${pad}${code}${pad}${fence}`;
}

function link(el: HtmlElement, ctx: Ctx): string {
  const text = collapseLine(inlineAll(el.children, ctx));
  const href = el.attrs.get("href")?.trim() ?? "";
  // A fragment-only link points into this page, which the Markdown does not keep.
  const url = href && !href.startsWith("#") ? resolveUrl(href, ctx.base, LINK_SCHEMES) : null;
  return url && text ? `[${text}](${destination(url)})` : text;
}

function image(el: HtmlElement, ctx: Ctx): string {
  // Lazy-loading pages put a data: placeholder in src and the real image in data-src.
  const sources = [el.attrs.get("src"), el.attrs.get("data-src")];
  const url = sources.map((src) => (src ? resolveUrl(src, ctx.base) : null)).find((found) => found !== null) ?? null;
  const alt = escapeText(collapseWhitespace(el.attrs.get("alt") ?? ""));
  return url ? `![${alt}](${destination(url)})` : "";
}

function inline(node: HtmlNode, ctx: Ctx): string {
  if (node.kind === "text") return escapeText(node.text.replace(/[ \t\n\r\f\u00a0\0]+/g, " "));
  if (isDropped(node, ctx)) return "";
  switch (node.name) {
    case "br": return BR;
    case "b": case "strong": return emphasis("**", inlineAll(node.children, ctx));
    case "i": case "em": return emphasis("*", inlineAll(node.children, ctx));
    case "code": case "kbd": case "samp": case "tt": return codeSpan(collapseWhitespace(rawText(node)));
    case "a": return link(node, ctx);
    case "img": return image(node, ctx);
  }
  const inner = inlineAll(node.children, ctx);
  return BLOCK_ELEMENTS.has(node.name) ? ` ${inner} ` : inner;
}

function paragraph(nodes: HtmlNode[], ctx: Ctx): string[] {
  const lines = inlineAll(nodes, ctx)
    .split(BR)
    .map((line) => escapeLineStart(line.replace(/ {2,}/g, " ").trim()))
    .filter((line) => line !== "");
  return lines.length ? [lines.join("  \n")] : [];
}

/** Renders `nodes` as blocks: runs of inline content become paragraphs. */
function blocks(nodes: HtmlNode[], ctx: Ctx): string[] {
  const out: string[] = [];
  let run: HtmlNode[] = [];
  for (const node of nodes) {
    if (node.kind === "text" || !BLOCK_ELEMENTS.has(node.name)) {
      run.push(node);
      continue;
    }
    out.push(...paragraph(run, ctx));
    run = [];
    if (!isDropped(node, ctx)) out.push(...block(node, ctx));
  }
  out.push(...paragraph(run, ctx));
  return out;
}

function block(el: HtmlElement, ctx: Ctx): string[] {
  const level = /^h([1-6])$/.exec(el.name)?.[1];
  if (level) {
    const text = collapseLine(inlineAll(el.children, ctx));
    return text ? [`${"#".repeat(Number(level))} ${text}`] : [];
  }
  switch (el.name) {
    case "p": return paragraph(el.children, ctx);
    case "pre": return codeBlock(el);
    case "blockquote": return quote(el, ctx);
    case "hr": return ["---"];
    case "ul": case "ol": return list(el, ctx);
    case "table": return table(el, ctx);
    default: return blocks(el.children, ctx);
  }
}

function codeBlock(pre: HtmlElement): string[] {
  // The parser drops a newline right after <pre>; trailing blank lines are layout.
  const code = rawText(pre).replace(/\r\n?/g, "\n").replace(/^\n/, "").trimEnd();
  if (!code.trim()) return [];
  const classes = [pre, findFirst(pre, (el) => el.name === "code")].map((el) => el?.attrs.get("class") ?? "").join(" ");
  const language = /(?:^|\s)(?:language|lang)-([\w+#.-]+)/.exec(classes)?.[1] ?? "";
  const fence = "`".repeat(Math.max(3, longestBacktickRun(code) + 1));
  return [`${fence}${language}\n${code}\n${fence}`];
}

function quote(el: HtmlElement, ctx: Ctx): string[] {
  const inner = blocks(el.children, ctx).join("\n\n");
  return inner ? [inner.split("\n").map((line) => (line ? `> ${line}` : ">")).join("\n")] : [];
}

/** One list item: continuation lines are indented by the marker's width, so nesting renders. */
function listItem(marker: string, parts: string[]): string {
  // A nested list follows its item's text directly; other blocks need a blank line.
  const body = parts.map((part, i) => (i === 0 ? part : (LIST_START.test(part) ? "\n" : "\n\n") + part)).join("");
  const indent = " ".repeat(marker.length + 1);
  return body.split("\n").map((line, i) => (i === 0 ? `${marker} ${line}`.trimEnd() : line && indent + line)).join("\n");
}

function list(el: HtmlElement, ctx: Ctx): string[] {
  const ordered = el.name === "ol";
  let number = Number.parseInt(el.attrs.get("start") ?? "", 10) || 1;
  const items: { marker: string; parts: string[] }[] = [];
  for (const child of el.children) {
    const isItem = child.kind === "element" && child.name === "li";
    if (isItem && isDropped(child, ctx)) continue;
    const parts = blocks(isItem ? child.children : [child], ctx);
    const previous = items[items.length - 1];
    // Content between items (often a nested list outside any <li>) belongs to the item before.
    if (!isItem && previous) previous.parts.push(...parts);
    else if (isItem || parts.length) items.push({ marker: ordered ? `${number++}.` : "-", parts });
  }
  return items.length ? [items.map((item) => listItem(item.marker, item.parts)).join("\n")] : [];
}

function tableRow(tr: HtmlElement, ctx: Ctx): string[] {
  const cells: string[] = [];
  for (const cell of tr.children) {
    if (cell.kind !== "element" || (cell.name !== "td" && cell.name !== "th")) continue;
    cells.push(collapseLine(inlineAll(cell.children, ctx)).replace(/\|/g, "\\|"));
    const span = Math.min(Number.parseInt(cell.attrs.get("colspan") ?? "", 10) || 1, 50);
    for (let i = 1; i < span; i++) cells.push("");
  }
  return cells;
}

/** A GitHub pipe table; the first row is the header, as pipe tables require one. */
function table(el: HtmlElement, ctx: Ctx): string[] {
  // A table that holds tables is page layout, not data.
  if (findFirst(el, (inner) => inner.name === "table")) return blocks(el.children, ctx);
  const rows = [...descendants(el)].filter((tr) => tr.name === "tr").map((tr) => tableRow(tr, ctx)).filter((row) => row.length);
  const width = rows.reduce((max, row) => Math.max(max, row.length), 0);
  if (!width) return [];
  const line = (cells: string[]): string => `| ${Array.from({ length: width }, (_, i) => cells[i] ?? "").join(" | ")} |`;
  const caption = findFirst(el, (inner) => inner.name === "caption");
  const [head = [], ...body] = rows;
  const grid = [line(head), line(Array<string>(width).fill("---")), ...body.map(line)].join("\n");
  return [...(caption ? paragraph(caption.children, ctx) : []), grid];
}

function hasAncestor(el: HtmlElement, name: string): boolean {
  for (let up = el.parent; up; up = up.parent) if (up.name === name) return true;
  return false;
}

function contentRoot(root: HtmlElement): HtmlElement {
  const main = findFirst(root, (el) => el.name === "main" || el.attrs.get("role") === "main", DROPPED);
  if (main) return main;
  const articles = [...descendants(root, DROPPED)].filter((el) => el.name === "article" && !hasAncestor(el, "article"));
  return (articles.length === 1 && articles[0]) || findFirst(root, (el) => el.name === "body") || root;
}

/** Whether `<title>` is the h1, maybe with the site name before or after ("Headline | Site"). */
function titleIsHeadline(title: string, h1: string): boolean {
  const [t, h] = [title.toLowerCase(), h1.toLowerCase()];
  if (t === h) return true;
  return (t.startsWith(h) && /^\s*[|:·•–—-]/.test(t.slice(h.length))) || (t.endsWith(h) && /[|:·•–—-]\s*$/.test(t.slice(0, -h.length)));
}

/** The main content of `html` as Markdown, `# Title` first; relative URLs resolved against `baseUrl`. */
export async function toMarkdown(html: string, baseUrl: string): Promise<string> {
  const { root } = await parseHtml(html);
  const content = contentRoot(root);
  const ctx: Ctx = { base: documentBase(root, baseUrl), skip: null };
  const titleEl = findFirst(root, (el) => el.name === "title", NOT_IN_SVG);
  const title = titleEl ? collapseWhitespace(rawText(titleEl)) : "";
  const h1 = findFirst(content, (el) => el.name === "h1", DROPPED);
  const h1Text = h1 ? collapseWhitespace(rawText(h1)) : "";

  let heading = escapeText(title);
  if (h1 && h1Text && (!title || titleIsHeadline(title, h1Text))) {
    heading = collapseLine(inlineAll(h1.children, ctx));
    ctx.skip = h1;
  }
  const out = [...(heading ? [`# ${heading}`] : []), ...blocks(content.children, ctx)];
  return out.length ? `${out.join("\n\n")}\n` : "";
}
