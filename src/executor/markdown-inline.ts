/**
 * Inline Markdown: text, emphasis, code spans, links and images on one line (or lines
 * split at `<br>`). The block renderer (extract-markdown.ts) builds on it.
 *
 * Linear in the content however it nests: strings are joined with `+` (V8 keeps ropes, no
 * copy), and the steps that read a whole string (collapsing a link's text, finding the
 * ends of an emphasis) apply at the outermost link and the two outermost emphases only.
 */
import { WORK, type WorkBudget } from "./budget";
import { BLOCK_ELEMENTS, rawText, resolveUrl, type HtmlElement, type HtmlNode } from "./html-tree";
import { collapseWhitespace, isSpaceAt } from "./text";

export interface Ctx {
  /** Base for relative URLs. */
  base: string;
  /** An element already rendered elsewhere: the h1 used as the title. */
  skip: HtmlElement | null;
  budget: WorkBudget;
  /** Block quotes and lists around this point (each one indents its content again). */
  containers: number;
  /** Emphases around this point; inside a link. */
  emphases: number;
  inLink: boolean;
  /** The block renderer's memo: whether an element holds a table. */
  tables: Map<HtmlElement, boolean>;
}

/** Never rendered: code, embeds, form controls, head matter and page chrome. */
export const DROPPED: ReadonlySet<string> = new Set([
  "script",
  "style",
  "noscript",
  "template",
  "svg",
  "math",
  "iframe",
  "object",
  "embed",
  "canvas",
  "head",
  "title",
  "input",
  "button",
  "select",
  "textarea",
  "option",
  "datalist",
  "output",
  "progress",
  "meter",
  "dialog",
  "nav",
  "aside",
  "footer",
]);
const LINK_SCHEMES: ReadonlySet<string> = new Set(["http:", "https:", "mailto:", "tel:"]);
/** Stands for `<br>` while inline text is built; NUL cannot survive in text (see `inline`). */
export const BR = "\u0000";
/** Space and NUL (a `<br>`) in text: one run becomes one space. */
const SPACE_OR_NUL_RUN = /[\s\0]+/g;
/** Nested emphasis past this depth adds no more markers (`***x***` is two). */
const MAX_EMPHASES = 2;

export const isDropped = (el: HtmlElement, ctx: Ctx): boolean =>
  DROPPED.has(el.name) || el.attrs.has("hidden") || el === ctx.skip;

/** Backslash-escapes what would otherwise read as Markdown syntax inside a line. */
export const escapeText = (text: string): string =>
  text.replace(/[\\`*[\]]|<(?=[A-Za-z/!?])|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])/g, "\\$&");

export const longestBacktickRun = (text: string): number =>
  (text.match(/`+/g) ?? []).reduce((max, run) => Math.max(max, run.length), 0);
/** Link and image targets: spaces and parentheses would end them early. */
const destination = (url: string): string => url.replace(/ /g, "%20").replace(/[()]/g, "\\$&");
/** Inline Markdown on a single line: headings, link text, table cells. */
export const collapseLine = (markdown: string): string => markdown.replaceAll(BR, " ").replace(/ {2,}/g, " ").trim();

export function inlineAll(nodes: HtmlNode[], ctx: Ctx): string {
  let out = "";
  for (const node of nodes) out += inline(node, ctx);
  return out;
}

const isBlankAt = (text: string, i: number): boolean => text.charCodeAt(i) === 0 || isSpaceAt(text, i);

/** `marker` around `text`, inside its leading and trailing space (one scan from each end, never backtracking). */
function emphasis(marker: string, text: string, ctx: Ctx): string {
  let start = 0;
  let end = text.length;
  while (start < end && isBlankAt(text, start)) start++;
  while (end > start && isBlankAt(text, end - 1)) end--;
  ctx.budget.step(text.length * WORK.char);
  if (start === end) return text;
  return `${text.slice(0, start)}${marker}${text.slice(start, end)}${marker}${text.slice(end)}`;
}

function emphasized(marker: string, el: HtmlElement, ctx: Ctx): string {
  if (ctx.emphases >= MAX_EMPHASES) return inlineAll(el.children, ctx);
  return emphasis(marker, inlineAll(el.children, { ...ctx, emphases: ctx.emphases + 1 }), ctx);
}

function codeSpan(code: string): string {
  if (!code) return "";
  const fence = "`".repeat(longestBacktickRun(code) + 1);
  const pad = code.startsWith("`") || code.endsWith("`") ? " " : "";
  return `${fence}${pad}${code}${pad}${fence}`;
}

function link(el: HtmlElement, ctx: Ctx): string {
  // A link inside a link (invalid, but parsed so) is its text: the outer one collapses it once.
  if (ctx.inLink) return inlineAll(el.children, ctx);
  const text = collapseLine(inlineAll(el.children, { ...ctx, inLink: true }));
  ctx.budget.step(text.length * WORK.char);
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

export function inline(node: HtmlNode, ctx: Ctx): string {
  ctx.budget.step(WORK.node);
  if (node.kind === "text") {
    ctx.budget.step(node.text.length * WORK.char);
    return escapeText(node.text.replace(SPACE_OR_NUL_RUN, " "));
  }
  if (isDropped(node, ctx)) return "";
  switch (node.name) {
    case "br":
      return BR;
    case "b":
    case "strong":
      return emphasized("**", node, ctx);
    case "i":
    case "em":
      return emphasized("*", node, ctx);
    case "code":
    case "kbd":
    case "samp":
    case "tt":
      return codeSpan(collapseWhitespace(rawText(node, ctx.budget)));
    case "a":
      return link(node, ctx);
    case "img":
      return image(node, ctx);
  }
  const inner = inlineAll(node.children, ctx);
  return BLOCK_ELEMENTS.has(node.name) ? ` ${inner} ` : inner;
}
