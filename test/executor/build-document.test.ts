/**
 * The `document` output (Firecrawl's page document): the parts asked for from one parse,
 * include/exclude tags, cleaned HTML, metadata, the work budget; and the batch's headers and
 * timeout reaching the fetch.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Env } from "../../src/env";
import { DEFAULT_EXTRACTION_LIMITS, WorkBudget } from "../../src/executor/budget";
import { buildDocument } from "../../src/executor/build-document";
import { fetchPolicyFor } from "../../src/executor/config";
import { runItem } from "../../src/executor/run-item";
import { headerProblem } from "../../src/domain/scrape-options";

const URL_ = "https://example.com/docs/page";
const page = { url: URL_, finalUrl: `${URL_}?moved=1`, statusCode: 200 };
const HTML = `<!doctype html><html lang="fr-CA"><head><title> The  Title </title>
<meta property="og:description" content="From OG"><style>p{}</style><script>alert("x")</script></head>
<body><header class="top">Site</header><main id="m"><h1>Heading</h1><p data-x='a"b'>One &lt;two&gt; &amp; three</p>
<img src="/i.png" alt="pic"><div class="ad"><p>Buy</p></div><a href="../other">rel</a><a href="#frag">self</a></main>
<aside><p class="keep">aside text</p></aside></body></html>`;

const build = (options: Parameters<typeof buildDocument>[2], budget = new WorkBudget()) =>
  buildDocument(HTML, page, options, budget);

describe("buildDocument", () => {
  it("builds only the formats asked for (markdown by default), with the page's metadata", async () => {
    const plain = await build(null);
    expect(Object.keys(plain).sort()).toEqual(["markdown", "metadata"]);
    expect(plain.metadata).toEqual({
      sourceURL: URL_,
      url: `${URL_}?moved=1`,
      statusCode: 200,
      title: "The Title",
      description: "From OG",
      language: "fr-CA",
    });
    const all = await build({ formats: ["links", "rawHtml", "html", "markdown"] });
    expect(Object.keys(all).sort()).toEqual(["html", "links", "markdown", "metadata", "rawHtml"]);
    expect(all.rawHtml).toBe(HTML);
    expect(all.links).toEqual(["https://example.com/other"]);
  });

  it("html is the page without scripts, styles or head, escaped where it must be", async () => {
    const { html } = await build({ formats: ["html"] });
    expect(html).not.toMatch(/<script|<style|alert|<title|<meta/);
    expect(html).toContain(`<p data-x="a&quot;b">One &lt;two&gt; &amp; three</p>`);
    expect(html).toContain(`<img src="/i.png" alt="pic">`);
    expect(html).not.toContain("</img>");
    expect(html?.startsWith("<header")).toBe(true);
  });

  it("excludeTags removes what matches; includeTags keeps only the outermost matches, in order", async () => {
    const excluded = await build({ formats: ["html", "markdown"], excludeTags: [".ad", "header"] });
    expect(excluded.html).not.toContain("Buy");
    expect(excluded.html).not.toContain("Site");
    expect(excluded.markdown).not.toContain("Buy");
    const included = await build({ formats: ["html", "links"], includeTags: ["p", "main"], excludeTags: [".ad"] });
    // main contains the p's: main is kept once; the aside's p.keep is a separate match.
    expect(included.html?.match(/<main/g)).toHaveLength(1);
    expect(included.html).toContain("aside text");
    expect(included.html).not.toContain("Buy");
    expect(included.html).not.toContain("Site");
    expect(included.links).toEqual(["https://example.com/other"]);
    const none = await build({ formats: ["markdown"], includeTags: ["table"] });
    expect(none.markdown).toBe("");
  });

  it("all parts count against one work budget: a page over the output limit stops", async () => {
    const limits = { ...DEFAULT_EXTRACTION_LIMITS, maxOutputBytes: HTML.length + 100 };
    await expect(build({ formats: ["markdown"] }, new WorkBudget(limits))).resolves.toBeDefined();
    await expect(build({ formats: ["rawHtml", "html", "markdown"] }, new WorkBudget(limits))).rejects.toThrow(
      /EXTRACT_MAX_OUTPUT_BYTES/,
    );
  });
});

describe("a batch's headers and timeout reach the fetch", () => {
  it("runItem sends the batch's headers (never over our User-Agent) and stores the document", async () => {
    let sent: Headers | undefined;
    const fetcher: typeof fetch = async (_input, init) => {
      sent = new Headers(init?.headers);
      return new Response(HTML, { headers: { "content-type": "text/html" } });
    };
    const outcome = await runItem(
      {
        action: "run",
        batchId: crypto.randomUUID(),
        itemId: crypto.randomUUID(),
        attempt: 1,
        url: URL_,
        output: "document",
        selectors: null,
        options: { formats: ["links"], headers: { "Accept-Language": "de", "X-Trace": "1" } },
        leaseExpiresAt: Date.now() + 60_000,
      },
      env as Env,
      fetcher,
    );
    expect(outcome.ok).toBe(true);
    expect(sent?.get("accept-language")).toBe("de");
    expect(sent?.get("x-trace")).toBe("1");
    expect(sent?.get("user-agent")).toMatch(/BatchScrapeBot/);
    expect(outcome.ok && outcome.inline).toMatchObject({ links: ["https://example.com/other"] });
  });

  it("the timeout narrows the fetch deadline, never widens it", () => {
    const e = { ...env, FETCH_TIMEOUT_MS: "15000" } as Env;
    expect(fetchPolicyFor(e, { timeoutMs: 2000 }).timeoutMs).toBe(2000);
    expect(fetchPolicyFor(e, { timeoutMs: 60000 }).timeoutMs).toBe(15000);
    expect(fetchPolicyFor(e, null).timeoutMs).toBe(15000);
  });

  it.each([
    ["Host", "x"],
    ["cookie", "a=b"],
    ["Authorization", "Bearer x"],
    ["Proxy-Authorization", "x"],
    ["Connection", "close"],
    ["Transfer-Encoding", "chunked"],
    ["User-Agent", "me"],
    ["X-Forwarded-For", "1.2.3.4"],
    ["Sec-Fetch-Mode", "cors"],
    ["CF-Connecting-IP", "1.2.3.4"],
    ["Bad Name", "x"],
    ["X-Ok", "line\r\nInjected: yes"],
    ["X-Long", "v".repeat(2000)],
  ])("refuses the header %s", (name, value) => {
    expect(headerProblem(name, value)).not.toBeNull();
  });

  it("accepts ordinary headers", () => {
    expect(headerProblem("Accept-Language", "en-US,en;q=0.9")).toBeNull();
    expect(headerProblem("X-Api-Version", "2")).toBeNull();
  });
});
