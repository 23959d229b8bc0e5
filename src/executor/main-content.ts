/**
 * `extractContentOnly`: the page without its boilerplate, in one streaming HTMLRewriter pass
 * before extraction. Removed with everything inside them:
 * - navigation, asides, footers, forms, scripts, styles, embeds, dialogs and hidden parts;
 * - a `<header>` (or role=banner) outside any `<article>`/`<main>`: the site's header; inside
 *   one it holds the headline and is kept;
 * - elements whose role is navigation, contentinfo, complementary, search or (alert)dialog;
 * - cookie and consent banners and other page furniture, told by their id or class
 *   (`cookie-banner`, `onetrust-…`, `CybotCookiebotDialog`, `sidebar`, `breadcrumb`, …).
 * Each element counts into the page's WorkBudget as it passes, and the pass pauses when a
 * slice of work is spent, like the parser (src/executor/html-tree.ts).
 */
import { WORK, type WorkBudget, limitErrorOf } from "./budget";
import { slices } from "./html-tree";

/** Removed wherever they are. */
const ALWAYS = new Set([
  "nav",
  "aside",
  "footer",
  "form",
  "script",
  "style",
  "noscript",
  "template",
  "iframe",
  "object",
  "embed",
  "dialog",
  "button",
  "select",
  "input",
  "textarea",
]);
/** Removed outside an article or main; inside one they belong to the content. */
const OUTSIDE_CONTENT = new Set(["header"]);
const CONTENT = new Set(["article", "main"]);

const ROLES_ALWAYS = new Set(["navigation", "contentinfo", "complementary", "search", "dialog", "alertdialog"]);

/** An id or one class token that names a cookie or consent banner (consent tools' own names too). */
const CONSENT =
  /cookie[-_]?(?:banner|bar|consent|notice|law|policy|popup|modal|dialog|message|wrapper|container|alert|overlay|info)|(?:^|[-_])(?:consent|gdpr|cmp)(?:[-_]|$)|onetrust|cookiebot|cookieyes|truste|^cc[-_](?:window|banner)|qc-cmp/i;
/** An id or one class token that names page furniture (whole token: `sidebar`, not `sidebar-free-layout`). */
const FURNITURE =
  /^(?:sidebar|side-bar|breadcrumbs?|skip[-_]?(?:link|links|to[-_]content)|share[-_]?(?:buttons|bar|tools|links)|social[-_]?(?:share|links|buttons)|advert(?:isement)?s?|ad[-_](?:slot|banner|container|unit)|newsletter(?:[-_](?:signup|form|box))?|related[-_](?:posts|articles|stories))$/i;

function namesBoilerplate(token: string): boolean {
  return CONSENT.test(token) || FURNITURE.test(token);
}

function isBoilerplate(el: Element, insideContent: boolean): boolean {
  const name = el.tagName;
  if (ALWAYS.has(name)) return true;
  if (!insideContent && OUTSIDE_CONTENT.has(name)) return true;
  if (el.hasAttribute("hidden") || el.getAttribute("aria-hidden") === "true") return true;
  const role = el.getAttribute("role")?.trim().toLowerCase();
  if (role && (ROLES_ALWAYS.has(role) || (!insideContent && role === "banner"))) return true;
  const id = el.getAttribute("id");
  if (id && namesBoilerplate(id)) return true;
  const classes = el.getAttribute("class");
  return classes?.split(/\s+/).some((token) => token !== "" && namesBoilerplate(token)) ?? false;
}

/**
 * `html` with its boilerplate removed. Throws the budget's ExtractionLimitError when the
 * page passes a limit (its time limit, in this pass).
 */
export async function mainContentHtml(html: string, budget: WorkBudget): Promise<string> {
  /** Open `<article>`/`<main>` elements (role=main too) around the current point. */
  let contentDepth = 0;
  let stop: unknown = null;
  const rewriter = new HTMLRewriter()
    .on("*", {
      element(el): Promise<void> | undefined {
        if (stop !== null) return undefined;
        budget.step(WORK.parsedElement);
        if (isBoilerplate(el, contentDepth > 0)) {
          el.remove();
        } else if (CONTENT.has(el.tagName) || el.getAttribute("role")?.trim().toLowerCase() === "main") {
          contentDepth++;
          el.onEndTag(() => {
            contentDepth--;
          });
        }
        return budget.due()
          ? budget.pause().catch((err: unknown) => {
              stop = err;
            })
          : undefined;
      },
    })
    .onDocument({
      comments(comment) {
        comment.remove();
      },
    });
  let out: string;
  try {
    out = await rewriter.transform(new Response(slices(html, () => stop !== null))).text();
  } catch (err) {
    throw limitErrorOf(stop ?? err, budget) ?? err;
  }
  if (stop !== null) throw stop;
  return out;
}
