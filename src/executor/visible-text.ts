/**
 * The text a reader sees under an element: blocks and `<br>` separate words, hidden
 * parts are skipped, whitespace is collapsed (src/executor/text.ts).
 *
 * Each element's text is worked out once, from its children's, and kept: with a selector
 * such as `*` on nested elements every ancestor's text contains its descendants', and
 * walking each match's subtree again would make the work grow with depth times size. A
 * piece of text is kept collapsed and trimmed, with flags for the space cut from either
 * end, so joining two pieces is one concatenation (V8 keeps it as a rope, not a copy).
 */
import { WORK, type WorkBudget } from "./budget";
import { BLOCK_ELEMENTS, type HtmlElement } from "./html-tree";
import { SPACE_RUN } from "./text";

/** Never visible: their text is left out of `text` and selector results. */
export const INVISIBLE: ReadonlySet<string> = new Set([
  "script",
  "style",
  "noscript",
  "template",
  "svg",
  "iframe",
  "object",
  "head",
  "title",
]);

/** Collapsed text with no space at either end; `lead`/`trail`: there was space there (for empty text: any space at all). */
interface Piece {
  text: string;
  lead: boolean;
  trail: boolean;
}

const NOTHING: Piece = { text: "", lead: false, trail: false };
const BREAK: Piece = { text: "", lead: true, trail: true };

function join(a: Piece, b: Piece): Piece {
  if (a.text === "")
    return { text: b.text, lead: a.lead || b.lead, trail: b.text === "" ? a.trail || b.trail : b.trail };
  if (b.text === "") return { text: a.text, lead: a.lead, trail: a.trail || b.lead };
  return { text: a.text + (a.trail || b.lead ? " " : "") + b.text, lead: a.lead, trail: b.trail };
}

function textPiece(raw: string): Piece {
  const collapsed = raw.replace(SPACE_RUN, " ");
  const lead = collapsed.startsWith(" ");
  const trail = collapsed.endsWith(" ");
  return {
    text: collapsed.slice(lead ? 1 : 0, trail ? Math.max(1, collapsed.length - 1) : collapsed.length),
    lead,
    trail,
  };
}

export class VisibleText {
  readonly #inner = new Map<HtmlElement, Piece>();

  constructor(private readonly budget?: WorkBudget) {}

  /** The visible text under `el` (its own tag may be hidden: `script` asked for by name still has text). */
  of(el: HtmlElement): string {
    return this.inner(el).text;
  }

  private inner(el: HtmlElement): Piece {
    const kept = this.#inner.get(el);
    if (kept) return kept;
    let piece = NOTHING;
    for (const child of el.children) {
      if (child.kind === "text") {
        this.budget?.step(WORK.node + child.text.length * WORK.char);
        piece = join(piece, textPiece(child.text));
      } else {
        this.budget?.step(WORK.node);
        piece = join(piece, this.outer(child));
      }
    }
    this.#inner.set(el, piece);
    return piece;
  }

  private outer(el: HtmlElement): Piece {
    if (INVISIBLE.has(el.name)) return NOTHING;
    const inner = this.inner(el);
    return el.name === "br" || BLOCK_ELEMENTS.has(el.name) ? join(join(BREAK, inner), BREAK) : inner;
  }
}
