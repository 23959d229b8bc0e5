/**
 * extractContentOnly (src/executor/main-content.ts) on realistic pages: a news story behind a
 * consent banner, a blog post with a sidebar and a comment form, a docs page with navigation
 * and no <main>. Each fixture marks its boilerplate with an UPPER-CASE token that must go, and
 * has content that must stay, in both outputs.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Env } from "../../src/env";
import { DEFAULT_EXTRACTION_LIMITS, ExtractionLimitError, WorkBudget } from "../../src/executor/budget";
import { extractJson } from "../../src/executor/extract-json";
import { toMarkdown } from "../../src/executor/extract-markdown";
import { mainContentHtml } from "../../src/executor/main-content";
import { runItem } from "../../src/executor/run-item";
import blog from "../fixtures/html/blog-sidebar.html?raw";
import docs from "../fixtures/html/docs-nav.html?raw";
import news from "../fixtures/html/news-consent.html?raw";

const URL_ = "https://example.com/page";

const PAGES = [
  {
    name: "news story behind a OneTrust banner",
    html: news,
    keep: [
      "City council approves new cycle lanes on Harbour Road",
      "Sam Okafor",
      "Councillors voted 9-4 on Thursday night",
      "What happens next",
      "Harbour Road carries 14,000 vehicles a day.",
    ],
    drop: [
      "CONSENT-BANNER-TEXT",
      "Accept all cookies",
      "SITE-NAV-OPINION",
      "ADVERTISEMENT-TOP",
      // Not boilerplate by its markup, but outside <main>: not the main content.
      "PROMO-STRIP-OUTSIDE-MAIN",
      "RELATED-LINKS-ASIDE",
      "SHARE-ON-X",
      "ARTICLE-FOOTER-TAGS",
      "MOST-READ-SIDEBAR",
      "SITE-FOOTER-COPYRIGHT",
      "NEWSLETTER-SIGNUP",
      "NOSCRIPT-PIXEL",
      "Search",
    ],
  },
  {
    name: "blog post with a sidebar, comments form and cookie bar",
    html: blog,
    keep: [
      "Sourdough in a cold kitchen",
      "a starter slows right down",
      "Warm the water",
      "proving box",
      // A class naming cookies as food is content, not a banner.
      "chocolate cookie recipes",
    ],
    drop: [
      "SKIP-LINK-TEXT",
      "BLOG-TAGLINE",
      "BLOG-NAV-ABOUT",
      "POST-FOOTER-CATEGORIES",
      "COMMENT-FORM-TEXTAREA",
      "BLOG-ARCHIVES-WIDGET",
      "COOKIE-LAW-BAR",
      "BLOG-COLOPHON",
    ],
  },
  {
    name: "docs page with navigation and no <main>",
    html: docs,
    keep: ["Configuring retries", "exponential backoff", "max_retries = 5", "retry_delay", "dead-letter queues"],
    drop: [
      "DOCS-SEARCH-BOX",
      "DOCS-SIGN-IN",
      "DOCS-SIDEBAR-QUEUES",
      "DOCS-BREADCRUMB-TRAIL",
      "HIDDEN-FEEDBACK-WIDGET",
      "DOCS-ON-THIS-PAGE",
      "DOCS-FOOTER",
      "COOKIEBOT-DIALOG",
    ],
  },
];

describe.each(PAGES)("main content only: $name", ({ html, keep, drop }) => {
  it("Markdown keeps the content and none of the boilerplate", async () => {
    const budget = new WorkBudget();
    const markdown = await toMarkdown(await mainContentHtml(html, budget), URL_, budget);
    for (const text of keep) expect(markdown).toContain(text);
    for (const text of drop) expect(markdown).not.toContain(text);
  });

  it("JSON text and links keep the content and none of the boilerplate; title and description stay", async () => {
    const budget = new WorkBudget();
    const doc = await extractJson(
      await mainContentHtml(html, budget),
      { url: URL_, finalUrl: URL_, statusCode: 200 },
      {},
      budget,
      { mainOnly: true },
    );
    for (const text of keep.filter((t) => !t.includes("\n") && !t.includes(" = "))) expect(doc.text).toContain(text);
    for (const text of drop) expect(JSON.stringify(doc)).not.toContain(text);
    expect(doc.title).not.toBeNull();
  });

  it("without it, the JSON text still holds the boilerplate (the option is what removes it)", async () => {
    const doc = await extractJson(html, { url: URL_, finalUrl: URL_, statusCode: 200 });
    expect(drop.some((text) => doc.text.includes(text))).toBe(true);
  });
});

describe("main content only: the work budget", () => {
  const many = `<html><body><main>${"<div><span>x</span></div>".repeat(20_000)}</main></body></html>`;

  it("counts every element and pauses when a slice is spent", async () => {
    const budget = new WorkBudget(DEFAULT_EXTRACTION_LIMITS, { pause: async () => {} });
    await mainContentHtml(many, budget);
    expect(budget.work).toBeGreaterThanOrEqual(40_000 * 64);
    expect(budget.pauses).toBeGreaterThan(10);
  });

  it("stops at the time limit with the budget's ExtractionLimitError", async () => {
    let clock = 0;
    const budget = new WorkBudget(
      { ...DEFAULT_EXTRACTION_LIMITS, timeoutMs: 50 },
      { now: () => clock, pause: async () => void (clock += 10), sliceUnits: 4096 },
    );
    const error = await mainContentHtml(many, budget).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ExtractionLimitError);
    expect((error as ExtractionLimitError).limit).toBe("timeoutMs");
  });
});

describe("runItem with mainContentOnly", () => {
  const serve =
    (html: string): typeof fetch =>
    async () =>
      new Response(html, { headers: { "content-type": "text/html; charset=utf-8" } });
  const lease = (output: "json" | "markdown", mainContentOnly: boolean) => ({
    action: "run" as const,
    batchId: crypto.randomUUID(),
    itemId: crypto.randomUUID(),
    attempt: 1,
    url: URL_,
    output,
    selectors: null,
    leaseExpiresAt: Date.now() + 60_000,
    mainContentOnly,
  });

  it.each(["json", "markdown"] as const)("%s: the stored result has no boilerplate", async (output) => {
    const outcome = await runItem(lease(output, true), env as Env, serve(news));
    expect(outcome.ok).toBe(true);
    const stored = JSON.stringify(outcome.ok && outcome.inline);
    expect(stored).toContain("Councillors voted 9-4");
    expect(stored).not.toContain("CONSENT-BANNER-TEXT");
    expect(stored).not.toContain("MOST-READ-SIDEBAR");
  });

  it("json without it keeps the banner text (the lease's flag is what changes it)", async () => {
    const outcome = await runItem(lease("json", false), env as Env, serve(news));
    expect(JSON.stringify(outcome.ok && outcome.inline)).toContain("CONSENT-BANNER-TEXT");
  });
});
