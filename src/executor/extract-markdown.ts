/**
 * The page's main content as Markdown (CommonMark, GitHub pipe tables): parse to a tree,
 * then render with plain recursive functions (inline content: markdown-inline.ts). Block
 * renderers append blocks to a list, joined by one blank line at the end, so runs of blank
 * lines cannot appear outside code blocks.
 *
 * Content root: `<main>` (or role=main), else the only top-level `<article>`, else the
 * body. Inside it nav, aside and footer are dropped; a `<header>` is kept, as inside an
 * article it holds the headline.
 *
 * The work is linear in the page: each block is appended once (not copied up through every
 * level), quotes and lists re-indent their content at most MAX_CONTAINERS deep, and whether
 * a table holds a table is worked out once per element. Blocks count into the budget's
 * output as they are made, and the renderer pauses between blocks when a slice is spent.
 */
import { WORK, WorkBudget } from "./budget";
import {
  BLOCK_ELEMENTS,
  descendants,
  documentBase,
  findFirst,
  parseHtml,
  rawText,
  type HtmlElement,
  type HtmlNode,
} from "./html-tree";
import {
  BR,
  collapseLine,
  type Ctx,
  DROPPED,
  escapeText,
  inlineAll,
  isDropped,
  longestBacktickRun,
} from "./markdown-inline";
import { collapseWhitespace } from "./text";

const NOT_IN_SVG: ReadonlySet<string> = new Set(["svg"]);
const LIST_START = /^(?:-|\d{1,9}\.)(?: |$)/;
/** Quotes and lists nested deeper than this render their content without another level of indent. */
const MAX_CONTAINERS = 8;
/** A cell's colspan counts up to this many columns. */
const MAX_COLSPAN = 50;

/** Adds `block` to `out`, counting it into the result as it is made. */
function emit(out: string[], block: string, ctx: Ctx): void {
  ctx.budget.output(block.length);
  out.push(block);
}

/** Escapes a line that would start a heading, list, quote or setext underline. */
function escapeLineStart(line: string): string {
  const number = /^\d{1,9}(?=[.)](\s|$))/.exec(line)?.[0];
  if (number) return `${number}\\${line.slice(number.length)}`;
  return /^(#{1,6}(\s|$)|[-+](\s|$)|>|(-+|=+)\s*$)/.test(line) ? `\\${line}` : line;
}

function paragraph(nodes: HtmlNode[], ctx: Ctx, out: string[]): void {
  if (nodes.length === 0) return;
  const markdown = inlineAll(nodes, ctx);
  ctx.budget.step(markdown.length * WORK.char);
  const lines = markdown
    .split(BR)
    .map((line) => escapeLineStart(line.replace(/ {2,}/g, " ").trim()))
    .filter((line) => line !== "");
  if (lines.length) emit(out, lines.join("  \n"), ctx);
}

/** Renders `nodes` as blocks into `out`: runs of inline content become paragraphs. */
async function blocks(nodes: HtmlNode[], ctx: Ctx, out: string[]): Promise<void> {
  let run: HtmlNode[] = [];
  for (const node of nodes) {
    if (node.kind === "text" || !BLOCK_ELEMENTS.has(node.name)) {
      run.push(node);
      continue;
    }
    paragraph(run, ctx, out);
    run = [];
    if (!isDropped(node, ctx)) await block(node, ctx, out);
    if (ctx.budget.due()) await ctx.budget.pause();
  }
  paragraph(run, ctx, out);
}

async function block(el: HtmlElement, ctx: Ctx, out: string[]): Promise<void> {
  ctx.budget.step(WORK.node);
  const level = /^h([1-6])$/.exec(el.name)?.[1];
  if (level) {
    const text = collapseLine(inlineAll(el.children, ctx));
    if (text) emit(out, `${"#".repeat(Number(level))} ${text}`, ctx);
    return;
  }
  switch (el.name) {
    case "p":
      return paragraph(el.children, ctx, out);
    case "pre":
      return codeBlock(el, ctx, out);
    case "blockquote":
      return quote(el, ctx, out);
    case "hr":
      return emit(out, "---", ctx);
    case "ul":
    case "ol":
      return list(el, ctx, out);
    case "table":
      return table(el, ctx, out);
    default:
      return blocks(el.children, ctx, out);
  }
}

function codeBlock(pre: HtmlElement, ctx: Ctx, out: string[]): void {
  // The parser drops a newline right after <pre>; trailing blank lines are layout.
  const code = rawText(pre, ctx.budget).replace(/\r\n?/g, "\n").replace(/^\n/, "").trimEnd();
  if (!code.trim()) return;
  const classes = [pre, findFirst(pre, (el) => el.name === "code", undefined, ctx.budget)]
    .map((el) => el?.attrs.get("class") ?? "")
    .join(" ");
  const language = /(?:^|\s)(?:language|lang)-([\w+#.-]+)/.exec(classes)?.[1] ?? "";
  const fence = "`".repeat(Math.max(3, longestBacktickRun(code) + 1));
  emit(out, `${fence}${language}\n${code}\n${fence}`, ctx);
}

/** The context inside one more quote or list, or null when they are nested too deep to indent again. */
function inside(ctx: Ctx): Ctx | null {
  return ctx.containers < MAX_CONTAINERS ? { ...ctx, containers: ctx.containers + 1 } : null;
}

async function quote(el: HtmlElement, ctx: Ctx, out: string[]): Promise<void> {
  const deeper = inside(ctx);
  if (!deeper) return blocks(el.children, ctx, out);
  const parts: string[] = [];
  await blocks(el.children, deeper, parts);
  const inner = parts.join("\n\n");
  ctx.budget.step(inner.length * WORK.char);
  if (inner)
    out.push(
      inner
        .split("\n")
        .map((line) => (line ? `> ${line}` : ">"))
        .join("\n"),
    );
}

/** One list item: continuation lines are indented by the marker's width, so nesting renders. */
function listItem(marker: string, parts: string[], ctx: Ctx): string {
  // A nested list follows its item's text directly; other blocks need a blank line.
  const body = parts.map((part, i) => (i === 0 ? part : (LIST_START.test(part) ? "\n" : "\n\n") + part)).join("");
  ctx.budget.step(body.length * WORK.char);
  const indent = " ".repeat(marker.length + 1);
  return body
    .split("\n")
    .map((line, i) => (i === 0 ? `${marker} ${line}`.trimEnd() : line && indent + line))
    .join("\n");
}

async function list(el: HtmlElement, ctx: Ctx, out: string[]): Promise<void> {
  const deeper = inside(ctx);
  if (!deeper) {
    for (const child of el.children) {
      const isItem = child.kind === "element" && child.name === "li";
      if (!(isItem && isDropped(child, ctx))) await blocks(isItem ? child.children : [child], ctx, out);
    }
    return;
  }
  const ordered = el.name === "ol";
  let number = Number.parseInt(el.attrs.get("start") ?? "", 10) || 1;
  const items: { marker: string; parts: string[] }[] = [];
  for (const child of el.children) {
    const isItem = child.kind === "element" && child.name === "li";
    if (isItem && isDropped(child, ctx)) continue;
    const previous = items[items.length - 1];
    // Content between items (often a nested list outside any <li>) belongs to the item before.
    if (!isItem && previous) {
      await blocks([child], deeper, previous.parts);
      continue;
    }
    const parts: string[] = [];
    await blocks(isItem ? child.children : [child], deeper, parts);
    if (isItem || parts.length) items.push({ marker: ordered ? `${number++}.` : "-", parts });
  }
  if (items.length) out.push(items.map((item) => listItem(item.marker, item.parts, ctx)).join("\n"));
}

function tableRow(tr: HtmlElement, ctx: Ctx): string[] {
  const cells: string[] = [];
  for (const cell of tr.children) {
    if (cell.kind !== "element" || (cell.name !== "td" && cell.name !== "th")) continue;
    cells.push(collapseLine(inlineAll(cell.children, ctx)).replace(/\|/g, "\\|"));
    const span = Math.min(Number.parseInt(cell.attrs.get("colspan") ?? "", 10) || 1, MAX_COLSPAN);
    ctx.budget.step(span);
    for (let i = 1; i < span; i++) cells.push("");
  }
  return cells;
}

/** Whether `el` holds a table, for each element at most once (layout tables nest). */
function holdsTable(el: HtmlElement, known: Map<HtmlElement, boolean>, budget: WorkBudget): boolean {
  const kept = known.get(el);
  if (kept !== undefined) return kept;
  let found = false;
  for (const child of el.children) {
    budget.step(WORK.node);
    if (child.kind === "element" && (child.name === "table" || holdsTable(child, known, budget))) found = true;
  }
  known.set(el, found);
  return found;
}

/** A GitHub pipe table; the first row is the header, as pipe tables require one. */
async function table(el: HtmlElement, ctx: Ctx, out: string[]): Promise<void> {
  // A table that holds tables is page layout, not data.
  if (holdsTable(el, ctx.tables, ctx.budget)) return blocks(el.children, ctx, out);
  const rows: string[][] = [];
  for (const tr of descendants(el, undefined, ctx.budget)) {
    if (tr.name !== "tr") continue;
    const row = tableRow(tr, ctx);
    if (row.length) rows.push(row);
  }
  const width = rows.reduce((max, row) => Math.max(max, row.length), 0);
  if (!width) return;
  const caption = findFirst(el, (inner) => inner.name === "caption", undefined, ctx.budget);
  if (caption) paragraph(caption.children, ctx, out);
  const [head = [], ...body] = rows;
  const lines: string[] = [];
  for (const cells of [head, Array<string>(width).fill("---"), ...body]) {
    // Short rows are padded to the widest: count the padding before making it.
    ctx.budget.output(4 + 3 * width);
    const line = `| ${Array.from({ length: width }, (_, i) => cells[i] ?? "").join(" | ")} |`;
    ctx.budget.output(line.length - 4 - 3 * width);
    lines.push(line);
    if (ctx.budget.due()) await ctx.budget.pause();
  }
  out.push(lines.join("\n"));
}

/** The outermost elements named `name` under `root`, outside dropped parts: their own subtrees are not entered. */
function outermost(root: HtmlElement, name: string, budget: WorkBudget): HtmlElement[] {
  const found: HtmlElement[] = [];
  const pending = [root];
  for (let el = pending.pop(); el; el = pending.pop()) {
    for (const child of el.children) {
      budget.step(WORK.node);
      if (child.kind !== "element" || DROPPED.has(child.name)) continue;
      if (child.name === name) found.push(child);
      else pending.push(child);
    }
  }
  return found;
}

export function contentRoot(root: HtmlElement, budget: WorkBudget): HtmlElement {
  const main = findFirst(root, (el) => el.name === "main" || el.attrs.get("role") === "main", DROPPED, budget);
  if (main) return main;
  const articles = outermost(root, "article", budget);
  return (
    (articles.length === 1 && articles[0]) || findFirst(root, (el) => el.name === "body", undefined, budget) || root
  );
}

/** Whether `<title>` is the h1, maybe with the site name before or after ("Headline | Site"). */
function titleIsHeadline(title: string, h1: string): boolean {
  const [t, h] = [title.toLowerCase(), h1.toLowerCase()];
  if (t === h) return true;
  return (
    (t.startsWith(h) && /^\s*[|:·•–—-]/.test(t.slice(h.length))) ||
    (t.endsWith(h) && /[|:·•–—-]\s*$/.test(t.slice(0, -h.length)))
  );
}

/**
 * The main content of `html` as Markdown, `# Title` first; relative URLs resolved against
 * `baseUrl`. Throws the budget's ExtractionLimitError when the page passes a limit.
 */
export async function toMarkdown(
  html: string,
  baseUrl: string,
  budget: WorkBudget = new WorkBudget(),
): Promise<string> {
  const { root } = await parseHtml(html, {}, budget);
  await budget.pause();
  return markdownOf(root, baseUrl, budget);
}

/** `toMarkdown` of a tree already parsed (and maybe filtered: src/executor/build-document.ts). */
export async function markdownOf(root: HtmlElement, baseUrl: string, budget: WorkBudget): Promise<string> {
  const content = contentRoot(root, budget);
  const ctx: Ctx = {
    base: documentBase(root, baseUrl, budget),
    skip: null,
    budget,
    containers: 0,
    emphases: 0,
    inLink: false,
    tables: new Map(),
  };
  const titleEl = findFirst(root, (el) => el.name === "title", NOT_IN_SVG, budget);
  const title = titleEl ? collapseWhitespace(rawText(titleEl, budget)) : "";
  const h1 = findFirst(content, (el) => el.name === "h1", DROPPED, budget);
  const h1Text = h1 ? collapseWhitespace(rawText(h1, budget)) : "";
  await budget.pause();

  let heading = escapeText(title);
  if (h1 && h1Text && (!title || titleIsHeadline(title, h1Text))) {
    heading = collapseLine(inlineAll(h1.children, ctx));
    ctx.skip = h1;
  }
  const out: string[] = [];
  if (heading) emit(out, `# ${heading}`, ctx);
  await blocks(content.children, ctx, out);
  return out.length ? `${out.join("\n\n")}\n` : "";
}
