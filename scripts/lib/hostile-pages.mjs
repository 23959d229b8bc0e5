// Hostile pages for scripts/hostile.mjs, made in memory when the server starts (nothing large
// is committed). Each is a route for scripts/target-server.mjs (`routes` option):
//
//   /hostile/many-elements   100,000 `<i>a</i>`
//   /hostile/unicode-spaces  `<p><b>x` + 64,000 × U+2003 EM SPACE + `x</b>`
//   /hostile/deep-nesting    250 nested `<div>`s around 400 KB of text (meant for selector "*")
//   /hostile/large-page      ~1.3 MB of 7,000 sections, lists and spans (meant for 20 broad selectors)
//   /hostile/trickle         a 200 with a body that comes one byte every `trickleEveryMs`
//   /hostile/gzip-bomb       a small gzip body (Content-Encoding: gzip) inflating to `bombBytes`
import { gzipSync } from "node:zlib";

const HTML = "text/html; charset=utf-8";

function page(body) {
  return Buffer.from(`<!doctype html><html lang="en"><head><title>hostile</title></head><body>${body}</body></html>`);
}

/** `lines` lines of words, 36 bytes each. */
function words(lines) {
  return Array.from({ length: lines }, (_, i) => `lorem ipsum dolor sit amet ${String(i).padStart(8, "0")}. `).join("");
}

function largePage(sections) {
  const parts = [];
  for (let i = 0; i < sections; i++) {
    parts.push(
      `<section class="s" data-n="${i}"><h2>Title ${i}</h2><p class="p">Some text for section ${i}, ` +
        `with <span>a span</span> and <em>emphasis</em>.</p><ul><li>one</li><li>two</li></ul></section>`,
    );
  }
  return page(`<main>${parts.join("")}</main>`);
}

/** Twenty broad selectors for /hostile/large-page (the API's maximum). Three of them match the whole page. */
export const TWENTY_SELECTORS = Object.fromEntries(
  [
    "html",
    "body",
    "main",
    "section",
    "h2",
    "p",
    "span",
    "em",
    "ul",
    "li",
    ".s",
    ".p",
    "section p",
    "section > h2",
    "p span",
    "li:first-child",
    "[data-n]",
    "main section",
    "ul li",
    "p em",
  ].map((selector, i) => [`s${i}`, selector]),
);

const staticPage = (body) => (req, res) => {
  res.writeHead(200, { "Content-Type": HTML, "Content-Length": body.byteLength });
  res.end(req.method === "HEAD" ? undefined : body);
};

/**
 * @param {{ trickleEveryMs?: number, trickleForMs?: number, bombBytes?: number }} [options]
 * @returns {{ routes: Map<string, (req, res) => void>, sizes: Record<string, number> }}
 *   `sizes`: bytes each page sends (the bomb: compressed; `bombInflated`: what it inflates to).
 */
export function hostilePages({ trickleEveryMs = 200, trickleForMs = 60_000, bombBytes = 32 * 1024 * 1024 } = {}) {
  const manyElements = page("<i>a</i>".repeat(100_000));
  const unicodeSpaces = page(`<p><b>x${"\u2003".repeat(64_000)}x</b></p>`);
  const deepNesting = page(`${"<div>".repeat(250)}${words(11_000)}${"</div>".repeat(250)}`);
  const large = largePage(7_000);
  const bomb = gzipSync(Buffer.alloc(bombBytes, "<p>aaaaaaaa</p>"), { level: 9 });

  const routes = new Map([
    ["/hostile/many-elements", staticPage(manyElements)],
    ["/hostile/unicode-spaces", staticPage(unicodeSpaces)],
    ["/hostile/deep-nesting", staticPage(deepNesting)],
    ["/hostile/large-page", staticPage(large)],
    [
      "/hostile/gzip-bomb",
      (req, res) => {
        res.writeHead(200, { "Content-Type": HTML, "Content-Encoding": "gzip", "Content-Length": bomb.byteLength });
        res.end(req.method === "HEAD" ? undefined : bomb);
      },
    ],
    [
      "/hostile/trickle",
      (_req, res) => {
        res.writeHead(200, { "Content-Type": HTML });
        res.write("<html><body><p>");
        const until = Date.now() + trickleForMs;
        const timer = setInterval(() => {
          if (res.destroyed) return clearInterval(timer);
          if (Date.now() >= until) {
            clearInterval(timer);
            res.end("</p></body></html>");
          } else res.write("a");
        }, trickleEveryMs);
        res.on("close", () => clearInterval(timer));
      },
    ],
  ]);
  const sizes = {
    manyElements: manyElements.byteLength,
    unicodeSpaces: unicodeSpaces.byteLength,
    deepNesting: deepNesting.byteLength,
    largePage: large.byteLength,
    bomb: bomb.byteLength,
    bombInflated: bombBytes,
  };
  return { routes, sizes };
}
