/**
 * `GET /docs`: the OpenAPI document rendered by Scalar's API reference, with runnable
 * examples ("Test Request"). Nothing comes from a CDN: the reference's browser bundle is the
 * pinned npm package's file, bundled into the Worker as bytes (wrangler.toml `rules`) and
 * served under a URL that carries its version, so it can be cached for good. The page
 * shares its origin with the dashboard, which keeps an API key in sessionStorage: its CSP
 * lets only same-origin scripts run and only same-origin requests leave.
 */
import { createRoute, z } from "@hono/zod-openapi";
// Through node_modules by path: the package's `exports` do not list its browser bundle.
import bundle from "../../../node_modules/@scalar/api-reference/dist/browser/standalone.js";
import { version } from "../../../node_modules/@scalar/api-reference/package.json";
import { newRouter } from "../validation";
import { docsHtml } from "./page";

/** A new package version is a new URL, so the old file may be cached forever. */
const DOCS_SCRIPT_PATH = `/docs/scalar/${version}/standalone.js`;

/**
 * Runs before the bundle. Zod (inside the bundle) probes for eval with `Function("")`; under
 * this CSP that probe is refused and reported as a violation. Its own switch turns it off.
 */
const DOCS_SETUP_PATH = "/docs/setup.js";
const SETUP_SCRIPT = "globalThis.__zod_globalConfig = { ...globalThis.__zod_globalConfig, jitless: true };\n";

const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  // Scalar injects its stylesheet and sets style attributes at run time; styles cannot run script.
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const page = createRoute({
  method: "get",
  path: "/docs",
  tags: ["Operations"],
  summary: "API reference (HTML)",
  description: "Scalar's API reference for /openapi.json; its script is served by this Worker (no CDN).",
  responses: { 200: { description: "The API reference page", content: { "text/html": { schema: z.string() } } } },
});

const script = createRoute({
  method: "get",
  path: DOCS_SCRIPT_PATH,
  tags: ["Operations"],
  summary: "The API reference's script (Scalar, pinned version)",
  responses: {
    200: { description: "Scalar's browser bundle; immutable", content: { "text/javascript": { schema: z.string() } } },
  },
});

const setup = createRoute({
  method: "get",
  path: DOCS_SETUP_PATH,
  tags: ["Operations"],
  summary: "The API reference's settings script (runs before Scalar)",
  responses: { 200: { description: "A one-line script", content: { "text/javascript": { schema: z.string() } } } },
});

const scriptHeaders = (cacheControl: string) => ({
  "content-type": "text/javascript; charset=utf-8",
  "cache-control": cacheControl,
  "x-content-type-options": "nosniff",
});

export const docs = newRouter()
  .openapi(page, (c) =>
    c.html(docsHtml([DOCS_SETUP_PATH, DOCS_SCRIPT_PATH]), 200, {
      "content-security-policy": DOCS_CSP,
      "cache-control": "no-cache",
      "referrer-policy": "no-referrer",
      "x-content-type-options": "nosniff",
    }),
  )
  .openapi(setup, (c) => c.body(SETUP_SCRIPT, 200, scriptHeaders("no-cache")) as never)
  .openapi(script, (c) => c.body(bundle, 200, scriptHeaders("public, max-age=31536000, immutable")) as never);
