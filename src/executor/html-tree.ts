/**
 * Parses HTML into a small tree in one HTMLRewriter pass, for the extractors to walk.
 *
 * HTMLRewriter streams and builds no tree, so this rebuilds one, working around how it
 * behaves in workerd:
 * - an element's end handler pops it and anything still open inside it: when an end tag
 *   closes unclosed children, the handler runs for each of them, naming the outer tag;
 * - an element whose end tag the HTML leaves out (`<li>a<li>b`, `<p>a<div>`) gets no
 *   end handler call when its sibling opens, so the implied end tags that matter for
 *   content are applied here (`closeImplied`);
 * - `canHaveContent` is undefined here; `onEndTag` throws for void elements (`<br>`,
 *   `<img>`, self-closed SVG), which is how they are told apart;
 * - text and attribute values arrive with entities still encoded, text in chunks.
 *
 * Every element, text chunk and attribute counts against the page's WorkBudget as it
 * arrives; a handler that passes a limit throws, which stops the parse there. Handlers
 * return the budget's pause when a slice of work is spent (HTMLRewriter waits for a
 * handler's promise), so a long parse lets other work run.
 */
import { WORK, WorkBudget, limitErrorOf } from "./budget";
export interface HtmlElement {
  kind: "element";
  /** Lower-case tag name; `#document` for the root. */
  name: string;
  /** Attribute values with entities decoded. */
  attrs: Map<string, string>;
  children: HtmlNode[];
  parent: HtmlElement | null;
}

export interface HtmlText {
  kind: "text";
  text: string;
}

export type HtmlNode = HtmlElement | HtmlText;

export interface ParsedHtml {
  root: HtmlElement;
  /** For each watched name, the elements its selector matched, in document order. */
  matches: Map<string, HtmlElement[]>;
}

/** Deeper elements are kept but flattened into their ancestor, so walks cannot overflow the stack. */
const MAX_DEPTH = 256;

/** Text inside these is not HTML-decoded by browsers. */
const RAW_TEXT = new Set(["script", "style", "xmp", "noembed", "noframes", "plaintext"]);

/** Elements whose start tag closes an open `<p>`. */
const CLOSES_P = [
  "address", "article", "aside", "blockquote", "details", "div", "dl", "fieldset", "figcaption", "figure",
  "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "main", "menu", "nav", "ol", "p",
  "pre", "section", "table", "ul",
];

interface ImpliedEnd {
  /** Open elements that this start tag closes. */
  closes: ReadonlySet<string>;
  /** Open elements that stop the search: nothing at or outside them is closed. */
  scope: ReadonlySet<string>;
}

function rule(closes: string[], scope: string[]): ImpliedEnd {
  return { closes: new Set(closes), scope: new Set(scope) };
}

const P_RULE = rule(["p"], ["button", "table", "td", "th", "caption", "template", "object"]);
const CELL_RULE = rule(["td", "th"], ["tr", "table"]);
const SECTION_RULE = rule(["thead", "tbody", "tfoot", "tr", "td", "th"], ["table"]);
const TERM_RULE = rule(["dt", "dd"], ["dl", "table"]);

const IMPLIED_END = new Map<string, ImpliedEnd>([
  ...CLOSES_P.map((name): [string, ImpliedEnd] => [name, P_RULE]),
  ["li", rule(["li"], ["ul", "ol", "menu", "table", "td", "th"])],
  ["dt", TERM_RULE],
  ["dd", TERM_RULE],
  ["tr", rule(["tr", "td", "th"], ["table", "thead", "tbody", "tfoot"])],
  ["td", CELL_RULE],
  ["th", CELL_RULE],
  ["thead", SECTION_RULE],
  ["tbody", SECTION_RULE],
  ["tfoot", SECTION_RULE],
  ["option", rule(["option"], ["select", "datalist", "optgroup"])],
  ["optgroup", rule(["optgroup", "option"], ["select"])],
  ["body", rule(["head"], [])],
]);

/**
 * The open elements, with a count of each name: most start tags that imply an end find
 * nothing of theirs open, and are answered without walking the stack.
 */
class OpenElements {
  readonly stack: HtmlElement[];
  readonly #count = new Map<string, number>();
  /** Where each element sits in the stack while it is open. */
  readonly #at = new Map<HtmlElement, number>();

  constructor(root: HtmlElement, private readonly budget: WorkBudget) {
    this.stack = [root];
  }

  top(): HtmlElement {
    return this.stack[this.stack.length - 1]!;
  }

  push(node: HtmlElement): void {
    this.#at.set(node, this.stack.length);
    this.stack.push(node);
    this.#count.set(node.name, (this.#count.get(node.name) ?? 0) + 1);
  }

  /** Pops `node` and everything above it; nothing if it is not open. */
  close(node: HtmlElement): void {
    const at = this.#at.get(node);
    if (at !== undefined && this.stack[at] === node) this.truncate(at);
  }

  /** Pops the outermost element, within scope, that the start tag `name` implicitly ends. */
  closeImplied(name: string): void {
    const implied = IMPLIED_END.get(name);
    if (!implied || !this.anyOpen(implied.closes)) return;
    let cut = -1;
    let i = this.stack.length - 1;
    for (; i > 0; i--) {
      const open = this.stack[i]!.name;
      if (implied.scope.has(open)) break;
      if (implied.closes.has(open)) cut = i;
    }
    this.budget.step((this.stack.length - i) * WORK.node);
    if (cut > 0) this.truncate(cut);
  }

  private anyOpen(names: ReadonlySet<string>): boolean {
    for (const name of names) if (this.#count.get(name)) return true;
    return false;
  }

  private truncate(length: number): void {
    for (let i = this.stack.length - 1; i >= length; i--) {
      const node = this.stack[i]!;
      this.#count.set(node.name, this.#count.get(node.name)! - 1);
      this.#at.delete(node);
    }
    this.stack.length = length;
  }
}

// Character references.

/** Latin-1 entity names, in code point order from U+00A0. */
const LATIN1_NAMES =
  "nbsp iexcl cent pound curren yen brvbar sect uml copy ordf laquo not shy reg macr deg plusmn sup2 sup3 " +
  "acute micro para middot cedil sup1 ordm raquo frac14 frac12 frac34 iquest Agrave Aacute Acirc Atilde " +
  "Auml Aring AElig Ccedil Egrave Eacute Ecirc Euml Igrave Iacute Icirc Iuml ETH Ntilde Ograve Oacute " +
  "Ocirc Otilde Ouml times Oslash Ugrave Uacute Ucirc Uuml Yacute THORN szlig agrave aacute acirc atilde " +
  "auml aring aelig ccedil egrave eacute ecirc euml igrave iacute icirc iuml eth ntilde ograve oacute " +
  "ocirc otilde ouml divide oslash ugrave uacute ucirc uuml yacute thorn yuml";

const NAMED_ENTITIES = new Map<string, string>([
  ...LATIN1_NAMES.split(" ").map((name, i): [string, string] => [name, String.fromCharCode(0xa0 + i)]),
  ["amp", "&"], ["lt", "<"], ["gt", ">"], ["quot", '"'], ["apos", "'"], ["hellip", "\u2026"],
  ["mdash", "\u2014"], ["ndash", "\u2013"], ["lsquo", "\u2018"], ["rsquo", "\u2019"], ["ldquo", "\u201c"],
  ["rdquo", "\u201d"], ["sbquo", "\u201a"], ["bdquo", "\u201e"], ["trade", "\u2122"], ["euro", "\u20ac"],
  ["bull", "\u2022"], ["dagger", "\u2020"], ["prime", "\u2032"], ["minus", "\u2212"], ["larr", "\u2190"],
  ["rarr", "\u2192"], ["ensp", "\u2002"], ["emsp", "\u2003"], ["thinsp", "\u2009"], ["zwnj", "\u200c"],
  ["zwj", "\u200d"], ["OElig", "\u0152"], ["oelig", "\u0153"], ["Scaron", "\u0160"], ["scaron", "\u0161"],
]);

/** Names browsers also decode without the `;` (the common part of the legacy list). */
const LEGACY_ENTITIES = new Set(["amp", "lt", "gt", "quot", "nbsp", "copy", "reg"]);

/** What browsers show for `&#128;`..`&#159;`: those windows-1252 characters, not C1 controls. */
const WINDOWS_1252_C1 =
  "\u20ac\u0081\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u008d\u017d\u008f" +
  "\u0090\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u009d\u017e\u0178";

function fromCodePoint(code: number): string {
  if (code >= 0x80 && code <= 0x9f) return WINDOWS_1252_C1.charAt(code - 0x80);
  if (code === 0 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return "\ufffd";
  return String.fromCodePoint(code);
}

const ENTITY = /&(?:#(\d{1,8})|#[xX]([0-9a-fA-F]{1,7})|([A-Za-z][A-Za-z0-9]{0,31}))(;?)/g;

/**
 * Decodes character references: numeric ones and the named ones above; others stay as
 * written. In attribute values a `;`-less name followed by `=` stays, as in browsers,
 * so query strings such as `?a=1&copy=2` survive.
 */
export function decodeEntities(raw: string, inAttribute: boolean): string {
  if (!raw.includes("&")) return raw;
  return raw.replace(ENTITY, (whole, dec?: string, hex?: string, name?: string, semi?: string, at?: number) => {
    if (dec !== undefined) return fromCodePoint(Number.parseInt(dec, 10));
    if (hex !== undefined) return fromCodePoint(Number.parseInt(hex, 16));
    const value = name === undefined ? undefined : NAMED_ENTITIES.get(name);
    if (value === undefined) return whole;
    if (semi === ";") return value;
    const next = raw.charAt((at ?? 0) + whole.length);
    return LEGACY_ENTITIES.has(name ?? "") && !(inAttribute && next === "=") ? value : whole;
  });
}

function element(name: string, attrs: Map<string, string>, parent: HtmlElement | null): HtmlElement {
  return { kind: "element", name, attrs, children: [], parent };
}

/**
 * Parses `html`. `watch` maps names to CSS selectors whose matches are collected;
 * a selector HTMLRewriter does not support throws here (check with `validateSelector`).
 * Throws the budget's ExtractionLimitError when the page passes a limit.
 */
export async function parseHtml(
  html: string,
  watch: Readonly<Record<string, string>> = {},
  budget: WorkBudget = new WorkBudget(),
): Promise<ParsedHtml> {
  const root = element("#document", new Map(), null);
  const open = new OpenElements(root, budget);
  let lastOpened = root;
  let pendingText = "";
  const pauseIfDue = (): Promise<void> | undefined => (budget.due() ? budget.pause() : undefined);

  let rewriter = new HTMLRewriter()
    .on("*", {
      element(el) {
        budget.element();
        open.closeImplied(el.tagName);
        const attrs = new Map<string, string>();
        for (const [name = "", value = ""] of el.attributes) {
          budget.text(value);
          attrs.set(name, decodeEntities(value, true));
        }
        const parent = open.top();
        const node = element(el.tagName, attrs, parent);
        parent.children.push(node);
        lastOpened = node;
        // Deeper elements stay children of the deepest kept one, and need no end handler.
        if (open.stack.length < MAX_DEPTH) {
          try {
            el.onEndTag(() => open.close(node));
            open.push(node);
          } catch {
            // void element: it has no end tag and takes no children
          }
        }
        return pauseIfDue();
      },
    })
    .onDocument({
      text(chunk) {
        budget.text(chunk.text);
        pendingText += chunk.text;
        if (!chunk.lastInTextNode || pendingText === "") return pauseIfDue();
        const parent = open.top();
        const text = RAW_TEXT.has(parent.name) ? pendingText : decodeEntities(pendingText, false);
        parent.children.push({ kind: "text", text });
        pendingText = "";
        return pauseIfDue();
      },
    });

  // Handlers for one element run in registration order, so `*` has already made its node.
  const matches = new Map<string, HtmlElement[]>();
  for (const [name, selector] of Object.entries(watch)) {
    const found: HtmlElement[] = [];
    matches.set(name, found);
    rewriter = rewriter.on(selector, {
      element: () => {
        budget.element();
        found.push(lastOpened);
      },
    });
  }

  // Handlers only run while the transformed body is read; arrayBuffer() reads it without
  // a JavaScript call per chunk (the rewriter emits a chunk per handler call).
  try {
    await rewriter.transform(new Response(html)).arrayBuffer();
  } catch (err) {
    throw limitErrorOf(err, budget) ?? err;
  }
  return { root, matches };
}

/** Elements that start a new line of text in a browser. */
export const BLOCK_ELEMENTS: ReadonlySet<string> = new Set([
  ...CLOSES_P, "body", "caption", "center", "dd", "dialog", "dt", "hgroup", "html", "li", "search", "summary",
  "tbody", "td", "tfoot", "th", "thead", "tr",
]);

const NOTHING: ReadonlySet<string> = new Set();

/**
 * Elements under `node` (not `node` itself) in document order, not entering `prune`d
 * subtrees. An explicit stack: nested generators would pass each element up through
 * every level (work growing with depth times size).
 */
export function* descendants(node: HtmlElement, prune: ReadonlySet<string> = NOTHING, budget?: WorkBudget): Generator<HtmlElement> {
  const pending: { children: HtmlNode[]; next: number }[] = [{ children: node.children, next: 0 }];
  while (pending.length > 0) {
    const level = pending[pending.length - 1]!;
    const child = level.children[level.next++];
    if (child === undefined) {
      pending.pop();
      continue;
    }
    budget?.step(WORK.node);
    if (child.kind !== "element" || prune.has(child.name)) continue;
    yield child;
    if (child.children.length > 0) pending.push({ children: child.children, next: 0 });
  }
}

export function findFirst(
  node: HtmlElement,
  match: (el: HtmlElement) => boolean,
  prune: ReadonlySet<string> = NOTHING,
  budget?: WorkBudget,
): HtmlElement | null {
  for (const el of descendants(node, prune, budget)) if (match(el)) return el;
  return null;
}

/** All text under `node` as written, `<br>` as a newline: for `<pre>` and `<title>`. One join, however deep. */
export function rawText(node: HtmlElement, budget?: WorkBudget): string {
  const parts: string[] = [];
  const pending: { children: HtmlNode[]; next: number }[] = [{ children: node.children, next: 0 }];
  while (pending.length > 0) {
    const level = pending[pending.length - 1]!;
    const child = level.children[level.next++];
    if (child === undefined) {
      pending.pop();
    } else if (child.kind === "text") {
      budget?.step(WORK.node + child.text.length * WORK.char);
      parts.push(child.text);
    } else {
      budget?.step(WORK.node);
      if (child.name === "br") parts.push("\n");
      else pending.push({ children: child.children, next: 0 });
    }
  }
  return parts.join("");
}

export const WEB_SCHEMES: ReadonlySet<string> = new Set(["http:", "https:"]);

/** `href` made absolute against `base`, or null if it does not parse or its scheme is not allowed. */
export function resolveUrl(href: string, base: string, schemes: ReadonlySet<string> = WEB_SCHEMES): string | null {
  try {
    const url = new URL(href.trim(), base);
    return schemes.has(url.protocol) ? url.href : null;
  } catch {
    return null;
  }
}

/** What relative URLs resolve against: the first `<base href>`, made absolute, else the page URL. */
export function documentBase(root: HtmlElement, pageUrl: string, budget?: WorkBudget): string {
  const href = findFirst(root, (el) => el.name === "base" && el.attrs.has("href"), NOTHING, budget)?.attrs.get("href");
  return (href !== undefined && resolveUrl(href, pageUrl)) || pageUrl;
}
