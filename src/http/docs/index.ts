/**
 * `GET /docs`: the OpenAPI document rendered by Scalar's API reference, with runnable
 * examples ("Try it"). Nothing comes from a CDN: the reference's browser bundle is the
 * pinned npm package's file, bundled into the Worker as bytes (wrangler.toml `rules`) and
 * served under a URL that carries its version, so it can be cached for good. The page
 * shares its origin with the dashboard, which keeps an API key in sessionStorage: its CSP
 * lets only that same-origin script run and only same-origin requests leave.
 */
import { createRoute, z } from "@hono/zod-openapi";
// Through node_modules by path: the package's `exports` do not list its browser bundle.
import bundle from "../../../node_modules/@scalar/api-reference/dist/browser/standalone.js";
import { version } from "../../../node_modules/@scalar/api-reference/package.json";
import { newRouter } from "../validation";
import { docsHtml } from "./page";

/** A new package version is a new URL, so the old file may be cached forever. */
export const DOCS_SCRIPT_PATH = `/docs/scalar/${version}/standalone.js`;

export const DOCS_CSP = [
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
  responses: { 200: { description: "Scalar's browser bundle; immutable", content: { "text/javascript": { schema: z.string() } } } },
});

export const docs = newRouter()
  .openapi(page, (c) =>
    c.html(docsHtml(DOCS_SCRIPT_PATH), 200, {
      "content-security-policy": DOCS_CSP,
      "cache-control": "no-cache",
      "referrer-policy": "no-referrer",
      "x-content-type-options": "nosniff",
    }),
  )
  .openapi(script, (c) =>
    c.body(bundle, 200, {
      "content-type": "text/javascript; charset=utf-8",
      "cache-control": "public, max-age=31536000, immutable",
      "x-content-type-options": "nosniff",
    }) as never,
  );
