/**
 * Writes a parsed tree (src/executor/html-tree.ts) back out as HTML, without the parts that
 * are never content: scripts, styles, templates and the like. This is the `html` part of a
 * document (Firecrawl's cleaned HTML); the page as fetched is its `rawHtml`.
 */
import { WORK, type WorkBudget } from "./budget";
import type { HtmlElement, HtmlNode } from "./html-tree";
import { utf8Length } from "./text";

/** Left out with everything inside them. */
export const NOT_CONTENT: ReadonlySet<string> = new Set(["script", "style", "noscript", "template", "link", "meta"]);

const VOID = new Set([
  "area",
  "base",
  "br",
  "col",
  "embed",
  "hr",
  "img",
  "input",
  "link",
  "meta",
  "source",
  "track",
  "wbr",
]);

const escapeText = (text: string) => text.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;");
const escapeAttr = (value: string) => value.replaceAll("&", "&amp;").replaceAll('"', "&quot;");
/** Attribute names as HTMLRewriter gave them, minus anything that could break out of the tag. */
const SAFE_ATTR = /^[A-Za-z_:][-A-Za-z0-9_:.]*$/;

/** `nodes` as HTML. Counts its work and its output against `budget`; pauses between top-level nodes. */
export async function serializeHtml(nodes: readonly HtmlNode[], budget: WorkBudget): Promise<string> {
  const out: string[] = [];
  for (const node of nodes) {
    write(node, out, budget);
    await budget.pause();
  }
  return out.join("");
}

/** Depth is bounded by the parser (MAX_DEPTH), so recursion is safe. */
function write(node: HtmlNode, out: string[], budget: WorkBudget): void {
  if (node.kind === "text") {
    const text = escapeText(node.text);
    budget.step(text.length * WORK.char);
    budget.output(utf8Length(text));
    out.push(text);
    return;
  }
  if (NOT_CONTENT.has(node.name)) return;
  budget.step(WORK.node);
  const isDocument = node.name.startsWith("#");
  if (!isDocument) out.push(openTag(node, budget));
  if (!VOID.has(node.name)) {
    for (const child of node.children) write(child, out, budget);
    if (!isDocument) {
      const close = `</${node.name}>`;
      budget.output(close.length);
      out.push(close);
    }
  }
}

function openTag(el: HtmlElement, budget: WorkBudget): string {
  let tag = `<${el.name}`;
  for (const [name, value] of el.attrs) {
    if (!SAFE_ATTR.test(name)) continue;
    tag += value === "" ? ` ${name}` : ` ${name}="${escapeAttr(value)}"`;
  }
  tag += ">";
  budget.step(tag.length * WORK.char);
  budget.output(utf8Length(tag));
  return tag;
}
