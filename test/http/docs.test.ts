/**
 * GET /docs serves the API reference whole from this Worker: the page's scripts and links are
 * same-origin, its CSP is strict, and the pinned script is served with long cache headers.
 * (scripts/docs-test.mjs checks the same page in Chromium with the network cut off.)
 */
import { describe, expect, it } from "vitest";
import { call, callJson } from "../helpers";

interface PageParts {
  scripts: { src: string | null; text: string }[];
  links: string[];
  configuration: string | null;
}

/** The page's <script> and <link> elements and Scalar's configuration, read with HTMLRewriter. */
async function readPage(html: string): Promise<PageParts> {
  const parts: PageParts = { scripts: [], links: [], configuration: null };
  await new HTMLRewriter()
    .on("script", {
      element(el) {
        const script = { src: el.getAttribute("src"), text: "" };
        parts.scripts.push(script);
        el.onEndTag(() => {});
      },
      text(t) {
        parts.scripts.at(-1)!.text += t.text;
      },
    })
    .on("link", { element: (el) => void parts.links.push(el.getAttribute("href") ?? "") })
    .on("#api-reference", { element: (el) => void (parts.configuration = el.getAttribute("data-configuration")) })
    .transform(new Response(html))
    .text();
  return parts;
}

/** Directive name -> its sources. */
function parseCsp(header: string): Map<string, string[]> {
  const directives = new Map<string, string[]>();
  for (const part of header.split(";")) {
    const [name, ...sources] = part.trim().split(/\s+/);
    if (name) directives.set(name.toLowerCase(), sources);
  }
  return directives;
}

const sameOrigin = (url: string) => new URL(url, "https://api.test/docs").origin === "https://api.test";

async function docsPage() {
  const res = await call("/docs");
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type") ?? "").toMatch(/^text\/html/);
  const html = await res.text();
  return { res, html, parts: await readPage(html) };
}

describe("GET /docs", () => {
  it("loads only same-origin scripts and links, and runs no inline script", async () => {
    const { parts } = await docsPage();
    expect(parts.scripts.length).toBeGreaterThan(0);
    for (const s of parts.scripts) {
      expect(s.src, "every <script> has a src").not.toBeNull();
      expect(sameOrigin(s.src!), s.src!).toBe(true);
      expect(s.text.trim()).toBe("");
    }
    for (const href of parts.links) expect(sameOrigin(href), href).toBe(true);
  });

  it("names no other origin anywhere in the page", async () => {
    const { html } = await docsPage();
    expect(html).not.toMatch(/(https?:)?\/\/[a-z0-9]/i);
  });

  it("tells Scalar to read /openapi.json and to leave Scalar's own services alone", async () => {
    const { parts } = await docsPage();
    // HTMLRewriter gives the attribute as written; a browser decodes the entities.
    const decoded = (parts.configuration ?? "null")
      .replace(/&quot;/g, '"')
      .replace(/&lt;/g, "<")
      .replace(/&gt;/g, ">")
      .replace(/&amp;/g, "&");
    expect(JSON.parse(decoded)).toMatchObject({
      url: "/openapi.json",
      withDefaultFonts: false,
      telemetry: false,
      showDeveloperTools: "never",
      agent: { disabled: true },
      mcp: { disabled: true },
    });
  });

  it("sends a strict CSP: same-origin script and connections, no plugins, no base, no framing", async () => {
    const { res } = await docsPage();
    const csp = parseCsp(res.headers.get("content-security-policy") ?? "");
    expect(csp.get("default-src")).toEqual(["'none'"]);
    expect(csp.get("script-src")).toEqual(["'self'"]);
    expect(csp.get("connect-src")).toEqual(["'self'"]);
    expect(csp.get("object-src")).toEqual(["'none'"]);
    expect(csp.get("base-uri")).toEqual(["'none'"]);
    expect(csp.get("frame-ancestors")).toEqual(["'none'"]);
    // No directive lets anything in from another host.
    for (const [name, sources] of csp) {
      for (const source of sources)
        expect(`${name} ${source}`).not.toMatch(/https?:|\*|\/\/|'unsafe-eval'|'strict-dynamic'/);
    }
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
  });

  it("runs our settings script first, then Scalar's pinned bundle", async () => {
    const { parts } = await docsPage();
    expect(parts.scripts.map((s) => s.src)).toEqual([
      "/docs/setup.js",
      expect.stringMatching(/^\/docs\/scalar\/\d+\.\d+\.\d+\/standalone\.js$/),
    ]);
  });

  it("serves the settings script as JavaScript that turns zod's eval probe off", async () => {
    const res = await call("/docs/setup.js");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type") ?? "").toMatch(/^text\/javascript/);
    expect(res.headers.get("cache-control")).toBe("no-cache");
    expect(await res.text()).toMatch(/__zod_globalConfig.*jitless: true/);
  });

  it("serves the bundle under a versioned URL, as JavaScript, cached for a year and immutable", async () => {
    const { parts } = await docsPage();
    const src = parts.scripts.at(-1)!.src!;
    expect(src).toMatch(/^\/docs\/scalar\/\d+\.\d+\.\d+\/standalone\.js$/);
    const res = await call(src);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type") ?? "").toMatch(/^text\/javascript/);
    const cache = res.headers.get("cache-control") ?? "";
    expect(cache).toContain("immutable");
    expect(Number(/max-age=(\d+)/.exec(cache)?.[1])).toBeGreaterThanOrEqual(365 * 24 * 3600);
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    const body = await res.text();
    // Scalar's standalone bundle: one file that registers window.Scalar and mounts on #api-reference.
    expect(body.length).toBeGreaterThan(1_000_000);
    expect(body).toContain("createApiReference");
    expect(body).toContain("api-reference");
  });

  it("answers 404 for a script version it does not have (a stale URL is never cached as this one)", async () => {
    const res = await call("/docs/scalar/0.0.1/standalone.js");
    expect(res.status).toBe(404);
  });

  it("documents the page and its scripts in OpenAPI", async () => {
    const { parts } = await docsPage();
    const { body: doc } = await callJson("/openapi.json");
    expect(Object.keys(doc.paths["/docs"].get.responses["200"].content)).toEqual(["text/html"]);
    for (const { src } of parts.scripts)
      expect(Object.keys(doc.paths[src!].get.responses["200"].content), src!).toEqual(["text/javascript"]);
  });
});
