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
 * arrives; a limit passed in a handler stops the parse at the next slice of input (see
 * `slices`). Handlers return the budget's pause when a slice of work is spent
 * (HTMLRewriter waits for a handler's promise), so a long parse lets other work run.
 */
import { WORK, WorkBudget, limitErrorOf } from "./budget";
import { decodeEntities } from "./entities";
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
  "address",
  "article",
  "aside",
  "blockquote",
  "details",
  "div",
  "dl",
  "fieldset",
  "figcaption",
  "figure",
  "footer",
  "form",
  "h1",
  "h2",
  "h3",
  "h4",
  "h5",
  "h6",
  "header",
  "hr",
  "main",
  "menu",
  "nav",
  "ol",
  "p",
  "pre",
  "section",
  "table",
  "ul",
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

  constructor(
    root: HtmlElement,
    private readonly budget: WorkBudget,
  ) {
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

function element(name: string, attrs: Map<string, string>, parent: HtmlElement | null): HtmlElement {
  return { kind: "element", name, attrs, children: [], parent };
}

/** Bytes fed to the rewriter at a time: after a limit is passed, at most this much more is scanned. */
const SLICE_BYTES = 4096;

/**
 * The page as a stream of slices, ended early once `stopped()` says so: the parse ends
 * there, and the caller throws the reason. (Neither a throw in a handler nor an errored
 * stream: workerd reports both as uncaught exceptions, one log line per hostile page.)
 */
export function slices(html: string, stopped: () => boolean): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(html);
  let at = 0;
  return new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (stopped() || at >= bytes.length) return controller.close();
        controller.enqueue(bytes.slice(at, at + SLICE_BYTES));
        at += SLICE_BYTES;
      },
    },
    { highWaterMark: 0 },
  );
}

/**
 * Parses `html`. `watch` maps names to CSS selectors whose matches are collected;
 * a selector HTMLRewriter does not support throws here (check with `validateSelector`, src/lib/css-selector.ts).
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
  /** Why the parse must stop (a limit passed); once set, handlers do nothing. */
  let stop: unknown = null;
  /** Runs a handler unless the parse is stopping; turns its throw into the reason to stop. */
  const guarded =
    <A extends unknown[]>(handler: (...args: A) => void) =>
    (...args: A): Promise<void> | undefined => {
      if (stop !== null) return undefined;
      try {
        handler(...args);
      } catch (err) {
        stop = err;
        return undefined;
      }
      // A spent slice: the rewriter waits for this promise, and other work runs meanwhile.
      return budget.due()
        ? budget.pause().catch((err: unknown) => {
            stop = err;
          })
        : undefined;
    };

  let rewriter = new HTMLRewriter()
    .on("*", {
      element: guarded((el: Element) => {
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
            el.onEndTag(guarded(() => open.close(node)));
            open.push(node);
          } catch {
            // void element: it has no end tag and takes no children
          }
        }
      }),
    })
    .onDocument({
      text: guarded((chunk: Text) => {
        budget.text(chunk.text);
        pendingText += chunk.text;
        if (!chunk.lastInTextNode || pendingText === "") return;
        const parent = open.top();
        const text = RAW_TEXT.has(parent.name) ? pendingText : decodeEntities(pendingText, false);
        parent.children.push({ kind: "text", text });
        pendingText = "";
      }),
    });

  // Handlers for one element run in registration order, so `*` has already made its node.
  const matches = new Map<string, HtmlElement[]>();
  for (const [name, selector] of Object.entries(watch)) {
    const found: HtmlElement[] = [];
    matches.set(name, found);
    rewriter = rewriter.on(selector, {
      element: guarded(() => {
        budget.element();
        found.push(lastOpened);
      }),
    });
  }

  // Handlers only run while the transformed body is read; arrayBuffer() reads it without
  // a JavaScript call per chunk (the rewriter emits a chunk per handler call).
  try {
    await rewriter.transform(new Response(slices(html, () => stop !== null))).arrayBuffer();
  } catch (err) {
    throw limitErrorOf(stop ?? err, budget) ?? err;
  }
  if (stop !== null) throw stop;
  return { root, matches };
}

/** Elements that start a new line of text in a browser. */
export const BLOCK_ELEMENTS: ReadonlySet<string> = new Set([
  ...CLOSES_P,
  "body",
  "caption",
  "center",
  "dd",
  "dialog",
  "dt",
  "hgroup",
  "html",
  "li",
  "search",
  "summary",
  "tbody",
  "td",
  "tfoot",
  "th",
  "thead",
  "tr",
]);

const NOTHING: ReadonlySet<string> = new Set();

/**
 * Every node under `node` (not `node` itself) in document order; `prune`d elements are
 * given but not entered. An explicit stack: nested generators would pass each node up
 * through every level (work growing with depth times size).
 */
function* nodesUnder(node: HtmlElement, prune: ReadonlySet<string>, budget?: WorkBudget): Generator<HtmlNode> {
  const pending: { children: HtmlNode[]; next: number }[] = [{ children: node.children, next: 0 }];
  while (pending.length > 0) {
    const level = pending[pending.length - 1]!;
    const child = level.children[level.next++];
    if (child === undefined) {
      pending.pop();
      continue;
    }
    budget?.step(WORK.node);
    yield child;
    if (child.kind === "element" && child.children.length > 0 && !prune.has(child.name))
      pending.push({ children: child.children, next: 0 });
  }
}

/** Elements under `node` (not `node` itself) in document order, not entering `prune`d subtrees. */
export function* descendants(
  node: HtmlElement,
  prune: ReadonlySet<string> = NOTHING,
  budget?: WorkBudget,
): Generator<HtmlElement> {
  for (const child of nodesUnder(node, prune, budget))
    if (child.kind === "element" && !prune.has(child.name)) yield child;
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
  for (const child of nodesUnder(node, NOTHING, budget)) {
    if (child.kind === "text") {
      budget?.step(child.text.length * WORK.char);
      parts.push(child.text);
    } else if (child.name === "br") {
      parts.push("\n");
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
