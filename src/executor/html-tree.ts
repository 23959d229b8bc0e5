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
 */
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

/** Pops the outermost element, within scope, that the start tag `name` implicitly ends. */
function closeImplied(stack: HtmlElement[], name: string): void {
  const implied = IMPLIED_END.get(name);
  if (!implied) return;
  let cut = -1;
  for (let i = stack.length - 1; i > 0; i--) {
    const open = stack[i]?.name ?? "";
    if (implied.scope.has(open)) break;
    if (implied.closes.has(open)) cut = i;
  }
  if (cut > 0) stack.length = cut;
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

function popTo(stack: HtmlElement[], node: HtmlElement): void {
  const at = stack.lastIndexOf(node);
  if (at > 0) stack.length = at;
}

function element(name: string, attrs: Map<string, string>, parent: HtmlElement | null): HtmlElement {
  return { kind: "element", name, attrs, children: [], parent };
}

/**
 * Parses `html`. `watch` maps names to CSS selectors whose matches are collected;
 * a selector HTMLRewriter does not support throws here (check with `validateSelector`).
 */
export async function parseHtml(html: string, watch: Readonly<Record<string, string>> = {}): Promise<ParsedHtml> {
  const root = element("#document", new Map(), null);
  const stack: HtmlElement[] = [root];
  const top = (): HtmlElement => stack[stack.length - 1] ?? root;
  let lastOpened = root;
  let pendingText = "";

  let rewriter = new HTMLRewriter()
    .on("*", {
      element(el) {
        closeImplied(stack, el.tagName);
        const attrs = new Map<string, string>();
        for (const [name = "", value = ""] of el.attributes) attrs.set(name, decodeEntities(value, true));
        const node = element(el.tagName, attrs, top());
        top().children.push(node);
        lastOpened = node;
        try {
          el.onEndTag(() => popTo(stack, node));
        } catch {
          return; // void element: it has no end tag and takes no children
        }
        if (stack.length < MAX_DEPTH) stack.push(node);
      },
    })
    .onDocument({
      text(chunk) {
        pendingText += chunk.text;
        if (!chunk.lastInTextNode || pendingText === "") return;
        const parent = top();
        const text = RAW_TEXT.has(parent.name) ? pendingText : decodeEntities(pendingText, false);
        parent.children.push({ kind: "text", text });
        pendingText = "";
      },
    });

  // Handlers for one element run in registration order, so `*` has already made its node.
  const matches = new Map<string, HtmlElement[]>();
  for (const [name, selector] of Object.entries(watch)) {
    const found: HtmlElement[] = [];
    matches.set(name, found);
    rewriter = rewriter.on(selector, { element: () => void found.push(lastOpened) });
  }

  // Handlers only run while the transformed body is read.
  await rewriter.transform(new Response(html)).body?.pipeTo(new WritableStream());
  return { root, matches };
}

/** Elements that start a new line of text in a browser. */
export const BLOCK_ELEMENTS: ReadonlySet<string> = new Set([
  ...CLOSES_P, "body", "caption", "center", "dd", "dialog", "dt", "hgroup", "html", "li", "search", "summary",
  "tbody", "td", "tfoot", "th", "thead", "tr",
]);

const NOTHING: ReadonlySet<string> = new Set();

/** Elements under `node` (not `node` itself) in document order, not entering `prune`d subtrees. */
export function* descendants(node: HtmlElement, prune: ReadonlySet<string> = NOTHING): Generator<HtmlElement> {
  for (const child of node.children) {
    if (child.kind !== "element" || prune.has(child.name)) continue;
    yield child;
    yield* descendants(child, prune);
  }
}

export function findFirst(
  node: HtmlElement,
  match: (el: HtmlElement) => boolean,
  prune: ReadonlySet<string> = NOTHING,
): HtmlElement | null {
  for (const el of descendants(node, prune)) if (match(el)) return el;
  return null;
}

/** All text under `node` as written, `<br>` as a newline: for `<pre>` and `<title>`. */
export function rawText(node: HtmlElement): string {
  return node.children.map((child) => (child.kind === "text" ? child.text : child.name === "br" ? "\n" : rawText(child))).join("");
}

/** HTML's whitespace collapsing; no-break spaces count as spaces here. */
export function collapseWhitespace(text: string): string {
  return text.replace(/[ \t\n\r\f\u00a0]+/g, " ").trim();
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
export function documentBase(root: HtmlElement, pageUrl: string): string {
  const href = findFirst(root, (el) => el.name === "base" && el.attrs.has("href"))?.attrs.get("href");
  return (href !== undefined && resolveUrl(href, pageUrl)) || pageUrl;
}
