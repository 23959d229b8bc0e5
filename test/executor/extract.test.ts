/// <reference types="vite/client" />
// (vite/client declares the `?raw` imports used for the fixtures.)
import { describe, expect, it } from "vitest";
import article from "../fixtures/html/article.html?raw";
import docs from "../fixtures/html/docs.html?raw";
import latin1Page from "../fixtures/html/latin1.html?raw";
import products from "../fixtures/html/products.html?raw";
import { decodeBody, detectCharset } from "../../src/executor/decode";
import { extractJson, MAX_TEXT_CHARS } from "../../src/executor/extract-json";
import { validateSelector } from "../../src/lib/css-selector";
import { toMarkdown } from "../../src/executor/extract-markdown";
import { decodeEntities } from "../../src/executor/entities";
import { parseHtml } from "../../src/executor/html-tree";

const ARTICLE_URL = "https://news.example.co.uk/uk/2024/08/thames-record-low";
const DOCS_URL = "https://docs.example.dev/docs/cli/install";
const SHOP_URL = "https://shop.example.com/garden-tools?sort=price";
const BASE = "https://example.com/blog/post/";

const page = (url: string) => ({ url, finalUrl: url, statusCode: 200 });
/** Markdown of a body fragment, without the page-level title line. */
const md = (body: string, base = BASE): Promise<string> => toMarkdown(`<body>${body}</body>`, base);

/** Link and image targets in Markdown, unescaped. */
function markdownTargets(markdown: string): string[] {
  return [...markdown.matchAll(/\]\(((?:\\.|[^)\\])*)\)/g)].map((m) => (m[1] ?? "").replace(/\\(.)/g, "$1"));
}

/** Blocks of consecutive lines that start with `|`: the pipe tables. */
function tables(markdown: string): string[][] {
  return markdown
    .split("\n\n")
    .map((block) => block.split("\n"))
    .filter((lines) => lines.every((l) => l.startsWith("|")));
}

const unescapedPipes = (line: string): number => line.replace(/\\./g, "").split("|").length - 1;

/** Encodes text as windows-1252 bytes (what a legacy server would send). */
function windows1252(text: string): Uint8Array {
  const high = "€\u0081‚ƒ„…†‡ˆ‰Š‹Œ\u008dŽ\u008f\u0090‘’“”•–—˜™š›œ\u009džŸ";
  return Uint8Array.from([...text], (ch) => {
    const code = ch.charCodeAt(0);
    if (code < 0x80 || (code >= 0xa0 && code <= 0xff)) return code;
    const at = high.indexOf(ch);
    if (at < 0) throw new Error(`not in windows-1252: ${ch}`);
    return 0x80 + at;
  });
}

/** Shift_JIS bytes for the few characters the tests use. */
const SHIFT_JIS: Record<string, number[]> = {
  日: [0x93, 0xfa],
  本: [0x96, 0x7b],
  語: [0x8c, 0xea],
  の: [0x82, 0xcc],
  ペ: [0x83, 0x79],
  ー: [0x81, 0x5b],
  ジ: [0x83, 0x57],
  東: [0x93, 0x8c],
  京: [0x8b, 0x9e],
};
function shiftJis(text: string): Uint8Array {
  return Uint8Array.from(
    [...text].flatMap((ch) => SHIFT_JIS[ch] ?? (ch.charCodeAt(0) < 0x80 ? [ch.charCodeAt(0)] : [])),
  );
}

describe("toMarkdown: exact output for small pages", () => {
  it("nests ordered and unordered lists three levels deep, items without end tags included", async () => {
    const html = `<ol><li>One<ul><li>Alpha<ol start="3"><li>deep<li>deeper</ol><li>Beta</ul><li>Two</ol><ul><li>x<li>y</ul>`;
    expect(await md(html)).toBe(
      ["1. One", "   - Alpha", "     3. deep", "     4. deeper", "   - Beta", "2. Two", "", "- x", "- y", ""].join(
        "\n",
      ),
    );
  });

  it("indents an item's second paragraph and code block under the item", async () => {
    const html = `<ul><li><p>First</p><p>More</p><pre>x = 1</pre></li><li>Second</li></ul>`;
    expect(await md(html)).toBe("- First\n\n  More\n\n  ```\n  x = 1\n  ```\n- Second\n");
  });

  it("renders a table with th as a pipe table: escaped pipes, flattened cells, colspan, short rows padded", async () => {
    const html = `<table><thead><tr><th>Name<th>Value</thead>
      <tr><td>a|b<td>line<br>break</tr><tr><td colspan="2">wide</td></tr><tr><td>short</tr></table>`;
    expect(await md(html)).toBe("| Name | Value |\n| --- | --- |\n| a\\|b | line break |\n| wide |  |\n| short |  |\n");
  });

  it("uses the first row as header when a table has no th", async () => {
    expect(await md("<table><tr><td>Item<td>Price<tr><td>Tea<td>&pound;3</table>")).toBe(
      "| Item | Price |\n| --- | --- |\n| Tea | £3 |\n",
    );
  });

  it("resolves links and images against the page URL, and honours <base href>", async () => {
    const body = `<p><a href="../other">up</a> <a href="/root">root</a> <a href="//cdn.example.net/x">cdn</a>
      <a href="next?q=a b&amp;r=1">query</a> <img src="pic.png" alt="A [pic]"></p>`;
    expect(await md(body)).toBe(
      "[up](https://example.com/blog/other) [root](https://example.com/root) [cdn](https://cdn.example.net/x) " +
        "[query](https://example.com/blog/post/next?q=a%20b&r=1) ![A \\[pic\\]](https://example.com/blog/post/pic.png)\n",
    );
    const withBase = `<head><base href="/docs/v2/"></head><body><a href="intro">Intro</a></body>`;
    expect(await toMarkdown(withBase, BASE)).toBe("[Intro](https://example.com/docs/v2/intro)\n");
  });

  it("keeps only the text of fragment-only, javascript: and empty links; keeps mailto:", async () => {
    const body = `<p><a href="#top">Top</a> <a href="javascript:void(0)">Share</a> <a>Plain</a> <a href="/x"></a>
      <a href="mailto:ed@example.com">Mail</a></p>`;
    expect(await md(body)).toBe("Top Share Plain [Mail](mailto:ed@example.com)\n");
  });

  it("decodes named, decimal, hex and astral entities, leaves unknown ones and double-encoded text as text", async () => {
    const body = `<p>Tom&nbsp;&amp;&nbsp;Jerry &copy; &reg; &hellip; &mdash; &ndash; &lsquo;a&rsquo; &ldquo;b&rdquo; &apos;
      &#123; &#x1F600; &#150; &eacute;&Uuml; &bogus; &amp;lt;tag&amp;gt; &lt;b&gt;</p>`;
    expect(await md(body)).toBe("Tom & Jerry © ® … — – ‘a’ “b” ' { 😀 – éÜ &bogus; &lt;tag&gt; \\<b>\n");
  });

  it("decodes entities in attributes but keeps query strings like &copy=2", () => {
    expect(decodeEntities("/a?x=1&amp;y=2&copy=3", true)).toBe("/a?x=1&y=2&copy=3");
    expect(decodeEntities("&copy 2024 &amp more", false)).toBe("© 2024 & more");
  });

  it("strips scripts, styles, embeds, form controls, hidden elements and chrome around <main>", async () => {
    const html = `<html><head><style>p{color:red}</style><title>T</title></head><body>
      <header><a href="/">Logo</a></header><nav>Menu</nav>
      <main><h2>Body</h2><script>var x = "<p>no</p>";</script><noscript>Enable JS</noscript>
        <template><p>tpl</p></template><svg><text>svg text</text></svg><iframe src="/ad"></iframe>
        <form><label>Email <input name="e"></label><button>Go</button><select><option>One</select><textarea>t</textarea></form>
        <p hidden>secret</p><aside>Aside</aside><p>Kept</p><footer>Article foot</footer></main>
      <aside>Side</aside><footer>Foot</footer></body></html>`;
    expect(await toMarkdown(html, BASE)).toBe("# T\n\n## Body\n\nEmail\n\nKept\n");
  });

  it("without <main>/<article> keeps the body minus nav, aside and footer", async () => {
    const html = `<body><header><p>Site name</p></header><nav>Menu</nav><div><p>Content</p></div><aside>Ad</aside><footer>Foot</footer></body>`;
    expect(await md(html)).toBe("Site name\n\nContent\n");
  });

  it("uses the h1 as title when <title> is the h1 plus the site name, without repeating it", async () => {
    const html = `<title>Big news | Example Times</title><body><h1>Big  news</h1><p>Text</p></body>`;
    expect(await toMarkdown(html, BASE)).toBe("# Big news\n\nText\n");
    expect(await toMarkdown(`<title>Example Times: Big news</title><h1>Big news</h1>`, BASE)).toBe("# Big news\n");
  });

  it("puts a <title> that differs from the h1 first and keeps the h1; with no <title> the h1 is the title", async () => {
    expect(await toMarkdown(`<title>Home</title><h1>Welcome</h1><p>x</p>`, BASE)).toBe("# Home\n\n# Welcome\n\nx\n");
    expect(await toMarkdown(`<h1>Only <em>heading</em></h1><h2>Sub</h2>`, BASE)).toBe("# Only *heading*\n\n## Sub\n");
  });

  it("renders inline formatting, code spans, fenced code, quotes, rules and line breaks", async () => {
    const body = `<h3>Notes</h3><p>Some<b> bold </b>and <i>em</i>, <code>a  &lt;b&gt;</code> and <code>x\`y</code>.<br>Next line</p>
      <hr><blockquote><p>Quoted</p><blockquote>Inner</blockquote></blockquote>
      <pre class="language-js">
const s = \`\`\`;
  indented()
</pre>`;
    expect(await md(body)).toBe(
      "### Notes\n\nSome **bold** and *em*, `a <b>` and ``x`y``.  \nNext line\n\n---\n\n> Quoted\n>\n> > Inner\n\n" +
        "````js\nconst s = ```;\n  indented()\n````\n",
    );
  });

  it("escapes text that would read as Markdown", async () => {
    expect(
      await md("<p>2024. A year</p><p># not a heading</p><p>- not a list</p><p>a *star* [x] snake_case _u_</p>"),
    ).toBe("2024\\. A year\n\n\\# not a heading\n\n\\- not a list\n\na \\*star\\* \\[x\\] snake_case \\_u\\_\n");
  });

  it("closes <p>, <li>, <td> and <tr> whose end tags the HTML leaves out", async () => {
    expect(await md("<p>one<p>two<div>three</div>")).toBe("one\n\ntwo\n\nthree\n");
    expect(await md("<table><tr><th>a<th>b<tr><td>1<td>2</table>")).toBe("| a | b |\n| --- | --- |\n| 1 | 2 |\n");
  });

  it("survives very deep nesting and empty input", async () => {
    const deep = `${"<div>".repeat(3000)}<p>bottom</p>${"</div>".repeat(3000)}`;
    expect(await md(deep)).toBe("bottom\n");
    expect(await toMarkdown("", BASE)).toBe("");
  });
});

describe("toMarkdown: properties of the fixtures", () => {
  const fixtures = [
    ["article", article, ARTICLE_URL],
    ["docs", docs, DOCS_URL],
    ["products", products, SHOP_URL],
  ] as const;

  it.each(fixtures)("%s: no script or CSS text, no chrome", async (_name, html, url) => {
    const markdown = await toMarkdown(html, url);
    for (const leak of [
      "dataLayer",
      "gtag",
      "font-family",
      "@context",
      "line-height",
      "__DOCS__",
      "ecommerce",
      "createElement",
      "Advertisement",
    ]) {
      expect(markdown).not.toContain(leak);
    }
    for (const chrome of [
      "Most read",
      "Privacy policy",
      "Related",
      "Topics:",
      "Search the site",
      "licensed under",
      "Terms",
    ]) {
      expect(markdown).not.toContain(chrome);
    }
  });

  it.each(fixtures)("%s: title line first, every link absolute, no runs of blank lines", async (_name, html, url) => {
    const markdown = await toMarkdown(html, url);
    expect(markdown.split("\n")[0]).toMatch(/^# \S/);
    const targets = markdownTargets(markdown);
    expect(targets.length).toBeGreaterThan(0);
    for (const target of targets) expect(new URL(target).protocol).toMatch(/^(https?|mailto):$/);
    expect(markdown.replace(/```[\s\S]*?```/g, "CODE")).not.toMatch(/\n[ \t]*\n[ \t]*\n/);
    expect(markdown.endsWith("\n") && !markdown.endsWith("\n\n")).toBe(true);
  });

  // The <table>s each fixture holds: the article none (none may be made up), the others one.
  const tablesIn = { article: 0, docs: 1, products: 1 };

  it.each(fixtures)("%s: its tables come out, every row with as many pipes as the header", async (name, html, url) => {
    const found = tables(await toMarkdown(html, url));
    expect(found).toHaveLength(tablesIn[name]);
    for (const table of found) {
      expect(table.length).toBeGreaterThanOrEqual(3);
      const pipes = unescapedPipes(table[0] ?? "");
      expect(table[1]).toMatch(/^\| --- (\| --- )*\|$/);
      for (const row of table) expect(unescapedPipes(row)).toBe(pipes);
    }
  });

  it("article: title from the h1, content from <main>, quotes and links intact", async () => {
    const markdown = await toMarkdown(article, ARTICLE_URL);
    expect(
      markdown.startsWith(
        "# River Thames reaches record low after driest summer\n\n[Drought](https://news.example.co.uk/climate/drought)\n",
      ),
    ).toBe(true);
    expect(markdown.match(/^# /gm)).toHaveLength(1);
    expect(markdown).toContain("> “We’ve never seen anything like it.");
    expect(markdown).toContain(
      "[publish an FAQ](https://news.example.co.uk/water/hosepipe-ban-faq?src=article&utm_medium=web)",
    );
    expect(markdown).toContain(
      "![Dry riverbed near Lechlade](https://news.example.co.uk/img/2024/08/thames-lechlade.jpg)",
    );
    expect(markdown).toContain("1.2 million customers");
  });

  it("docs: nested lists, code block and table come out exactly", async () => {
    const markdown = await toMarkdown(docs, DOCS_URL);
    expect(markdown).toContain(
      "1. Download the package\n   - With npm:\n     1. Run `npm install -g example-cli`\n     2. Check the version\n" +
        "   - With Homebrew\n2. Log in with `example login`\n3. Create a config file\n",
    );
    expect(markdown).toContain('```ts\nimport { defineConfig } from "example-cli";\n\nexport default defineConfig({\n');
    expect(markdown).toContain('  match: (url: string) => url.startsWith("https://") && !url.includes("<"),\n});\n```');
    expect(markdown).toContain("| Option | Type | Default | Description |\n| --- | --- | --- | --- |\n");
    expect(markdown).toContain('| `mode` | `"fast" \\| "safe"` | `"safe"` | Trade-off between speed and politeness. |');
    expect(markdown).not.toContain("Overview");
  });

  it("products: <base href> applies to links and images, data: placeholders give way to data-src", async () => {
    const markdown = await toMarkdown(products, SHOP_URL);
    expect(markdown).toContain(
      "| [![Stainless spade](https://shop.example.com/catalog/images/spade-123.jpg)](https://shop.example.com/catalog/garden/spade-123.html) | " +
        "[Stainless \\| steel spade](https://shop.example.com/catalog/garden/spade-123.html) | €34.99 | Yes |",
    );
    expect(markdown).toContain(
      "[![Dutch hoe](https://cdn.example.com/images/hoe-5.jpg)](https://shop.example.com/offers/hoe-5.html)",
    );
    expect(markdown).toContain("[Digging fork ash handle]");
    expect(markdown).not.toContain("data:image");
  });
});

describe("extractJson", () => {
  it("returns every field of the article fixture exactly", async () => {
    const json = await extractJson(
      article,
      { url: "http://news.example.co.uk/s/abc", finalUrl: ARTICLE_URL, statusCode: 200 },
      {
        headings: "main h2",
        byline: "article .byline a",
        quote: "blockquote p",
      },
    );
    expect(json).toEqual({
      url: "http://news.example.co.uk/s/abc",
      finalUrl: ARTICLE_URL,
      statusCode: 200,
      title: "River Thames reaches record low after driest summer | The Daily Example",
      description:
        "Water levels on the upper Thames have fallen to their lowest since records began, the Environment Agency says.",
      lang: "en-GB",
      links: [
        "https://news.example.co.uk/",
        "https://news.example.co.uk/uk",
        "https://news.example.co.uk/world",
        "https://news.example.co.uk/climate",
        "https://shop.example.co.uk/",
        "https://news.example.co.uk/climate/drought",
        "https://news.example.co.uk/profile/jane-rivers",
        "https://www.gov.uk/government/organisations/environment-agency",
        "https://news.example.co.uk/climate/2024/07/heatwave",
        "https://news.example.co.uk/water/hosepipe-ban-faq?src=article&utm_medium=web",
        "https://news.example.co.uk/topics/drought",
        "https://news.example.co.uk/topics/rivers",
        "https://news.example.co.uk/uk/2024/08/train-strike",
        "https://news.example.co.uk/world/2024/08/olympics-closing",
        "https://news.example.co.uk/privacy",
      ],
      text: expect.stringMatching(
        /^Skip to main content UK World Climate Shop Search Drought River Thames reaches record low/,
      ),
      selectors: {
        headings: ["Related", "What happens next?"],
        byline: ["Jane Rivers"],
        quote: [
          "“We’ve never seen anything like it. The fish are trapped in pools that shrink every day.”",
          "— Tom Ferris, a farmer at Ewen",
        ],
      },
    });
    expect(json.text).toContain("shrink every day.” — Tom Ferris");
    expect(json.text).toMatch(/All rights reserved\. Privacy policy \| UK$/);
    for (const leak of ["dataLayer", "font-family", "@context", "logo", "Advertisement", "pixel"])
      expect(json.text).not.toContain(leak);
  });

  it("falls back to og:description, and to null when a field is missing", async () => {
    const json = await extractJson(docs, page(DOCS_URL));
    expect([json.title, json.description, json.lang]).toEqual([
      "Installing the CLI - Example Docs",
      "How to install and configure the example command-line tool.",
      "en",
    ]);
    const bare = await extractJson("<p>hi</p>", page(BASE));
    expect([bare.title, bare.description, bare.lang, bare.links, bare.text, bare.selectors]).toEqual([
      null,
      null,
      null,
      [],
      "hi",
      {},
    ]);
  });

  it("resolves links against <base href>, drops fragment-only, javascript: and mailto:, de-duplicates in order", async () => {
    const json = await extractJson(products, page(SHOP_URL), { price: "td.price", names: "tr > td:nth-child(2) a" });
    expect(json.links).toEqual([
      "https://shop.example.com/",
      "https://shop.example.com/catalog/garden/",
      "https://shop.example.com/catalog/kitchen/",
      "https://shop.example.com/basket",
      "https://shop.example.com/catalog/garden/spade-123.html",
      "https://shop.example.com/catalog/garden/fork-77.html",
      "https://shop.example.com/offers/hoe-5.html",
      "https://shop.example.com/catalog/?page=2",
      "https://shop.example.com/terms",
    ]);
    expect(json.selectors).toEqual({
      price: ["€34.99", "€29.50"],
      names: ["Stainless | steel spade", "Digging fork ash handle", "Dutch hoe (special offer)"],
    });
    expect(json.description).toBe("Spades, forks and hoes from Example Shop.");
  });

  it("joins text chunks: script text split at '<' comes back whole through a selector", async () => {
    const html = `<script id="cfg">if (a<b && c>d) { go("&amp;"); }</script><p id="p">x &amp; y</p>`;
    const json = await extractJson(html, page(BASE), { cfg: "script#cfg", p: "#p", none: "table" });
    expect(json.selectors).toEqual({ cfg: ['if (a<b && c>d) { go("&amp;"); }'], p: ["x & y"], none: [] });
    expect(json.text).toBe("x & y");
  });

  it("caps text at MAX_TEXT_CHARS", async () => {
    const json = await extractJson(`<p>${"lorem ipsum ".repeat(20_000)}</p>`, page(BASE));
    expect(json.text).toHaveLength(MAX_TEXT_CHARS);
    expect(json.text.startsWith("lorem ipsum lorem")).toBe(true);
  });

  it("separates words at block boundaries but not inside inline markup", async () => {
    const json = await extractJson("<div>a</div><div>b<br>c</div><p>bo<b>ld</b></p><li>item</li>", page(BASE));
    expect(json.text).toBe("a b c bold item");
  });
});

describe("validateSelector", () => {
  it.each(["a", "div.c > p", "#id", "a[href^='https']", "li:nth-child(2n+1)", "p:not(.x)", "ul li:first-child"])(
    "accepts %s",
    (selector) => expect(validateSelector(selector)).toBeNull(),
  );

  it.each([
    ["h1 + p", /combinator/],
    ["h1 ~ p", /combinator/],
    ["li:last-child", /pseudo-class/],
    ["div:has(p)", /pseudo-class/],
    ["div >", /combinator/],
    ["[", /end of selector/],
    ["", /empty/],
  ])("rejects %j with a message", (selector, message) => {
    expect(validateSelector(selector)).toMatch(message);
  });

  it("an invalid selector in extractJson yields an empty list and the others still work", async () => {
    const json = await extractJson("<ul><li>a</li><li>b</li></ul>", page(BASE), { bad: "li:last-child", good: "li" });
    expect(json.selectors).toEqual({ bad: [], good: ["a", "b"] });
  });
});

describe("decodeBody", () => {
  it("reads windows-1252 declared in <meta http-equiv> and extracts the accented text", async () => {
    const bytes = windows1252(latin1Page);
    expect(bytes.length).toBe(latin1Page.length);
    expect(bytes.indexOf(0xe9)).toBeGreaterThan(0); // é is one byte, not UTF-8's two
    expect(detectCharset(bytes, "text/html")).toBe("windows-1252");
    const html = decodeBody(bytes, "text/html");
    expect(html).toBe(latin1Page);
    const json = await extractJson(html, page("https://cafe.example.fr/"));
    expect(json.title).toBe("Café de la Gare – Menu d’été");
    expect(json.text).toBe(
      "Café de la Gare – Menu d’été Déjeuner servi à partir de 11h30. Spécialité : crème brûlée, 6,50 €. " +
        "« Très agréable », dit Zoë. Ouvert du lundi au samedi — fermé en août.",
    );
  });

  it("lets the Content-Type charset win over <meta>, mapping iso-8859-1 to windows-1252", () => {
    const bytes = windows1252('<meta charset="utf-8"><p>Ça coûte 5 €</p>');
    expect(detectCharset(bytes, "text/html; charset=ISO-8859-1")).toBe("windows-1252");
    expect(decodeBody(bytes, 'text/html; charset="iso-8859-1"')).toBe('<meta charset="utf-8"><p>Ça coûte 5 €</p>');
  });

  it("decodes Shift_JIS from the header and from <meta charset>", async () => {
    const body = shiftJis("<title>日本語のページ</title><p>東京</p>");
    expect(decodeBody(body, "text/html; charset=Shift_JIS")).toBe("<title>日本語のページ</title><p>東京</p>");
    const sniffed = decodeBody(shiftJis('<meta charset="shift_jis"><title>東京</title>'), null);
    expect((await extractJson(sniffed, page(BASE))).title).toBe("東京");
  });

  it("decodes GBK", () => {
    expect(decodeBody(new Uint8Array([0xd6, 0xd0, 0xce, 0xc4]), "text/html;charset=gbk")).toBe("中文");
  });

  it("falls back to UTF-8 for unknown labels, no declaration, or a declaration past the first 2 KB", () => {
    const utf8 = new TextEncoder().encode("<p>naïve café</p>");
    expect(decodeBody(utf8, "text/html; charset=x-no-such-charset")).toBe("<p>naïve café</p>");
    expect(decodeBody(utf8, null)).toBe("<p>naïve café</p>");
    const late = new TextEncoder().encode(`<!--${" ".repeat(2100)}--><meta charset="windows-1252"><p>é</p>`);
    expect(detectCharset(late, null)).toBe("utf-8");
  });

  it("lets a byte order mark override the header; a meta saying utf-16 means UTF-8", () => {
    const bom = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode("é")]);
    expect(decodeBody(bom, "text/html; charset=windows-1252")).toBe("é");
    expect(decodeBody(new Uint8Array([0xff, 0xfe, 0x41, 0x00, 0xe9, 0x00]), null)).toBe("Aé");
    expect(detectCharset(new TextEncoder().encode('<meta charset="utf-16"><p>x</p>'), null)).toBe("utf-8");
  });
});

describe("parseHtml", () => {
  it("builds the tree HTMLRewriter does not: void elements are leaves, unclosed items are siblings", async () => {
    const { root } = await parseHtml("<ul><li>a<br>b<li>c</ul><img src=x><script>if (a<b) x()</script>");
    const shape = (node: (typeof root.children)[number]): unknown =>
      node.kind === "text" ? node.text : { [node.name]: node.children.map(shape) };
    expect(root.children.map(shape)).toEqual([
      { ul: [{ li: ["a", { br: [] }, "b"] }, { li: ["c"] }] },
      { img: [] },
      { script: ["if (a<b) x()"] },
    ]);
  });
});
