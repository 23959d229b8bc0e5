/**
 * `GET /dashboard`: one HTML page (inline CSS and script, no build) where a user pastes an
 * API key and sees their credits, their batches and, for one batch, live progress pushed
 * over `GET /api/batch/scrape/{batchId}/live`. The key stays in the tab's sessionStorage
 * and travels only as the x-api-key header and the WebSocket subprotocol: never in a URL.
 * `GET /` redirects here.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { newRouter } from "../validation";
import { dashboardHtml } from "./page";

const page = createRoute({
  method: "get",
  path: "/dashboard",
  tags: ["Dashboard"],
  summary: "Live dashboard (HTML)",
  description: "Paste an API key to see credits, batches and live batch progress; create and cancel batches.",
  responses: { 200: { description: "The dashboard page", content: { "text/html": { schema: z.string() } } } },
});

const root = createRoute({
  method: "get",
  path: "/",
  tags: ["Dashboard"],
  summary: "Redirects to the dashboard",
  responses: {
    302: {
      description: "To /dashboard",
      headers: z.object({ Location: z.string().openapi({ example: "/dashboard" }) }),
    },
  },
});

/** 16 random bytes, base64: the nonce that lets only our inline script and style run. */
function nonce(): string {
  return btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
}

export const dashboard = newRouter()
  .openapi(page, (c) => {
    const n = nonce();
    const host = c.req.header("host");
    // 'self' covers same-origin ws: in current browsers; the explicit origins cover older ones.
    const sockets = host && /^[A-Za-z0-9.:[\]-]+$/.test(host) ? ` ws://${host} wss://${host}` : "";
    return c.html(dashboardHtml(n), 200, {
      "content-security-policy": [
        "default-src 'none'",
        `script-src 'nonce-${n}'`,
        `style-src 'nonce-${n}'`,
        `connect-src 'self'${sockets}`,
        "img-src 'self' data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
      ].join("; "),
      "cache-control": "no-store",
      "referrer-policy": "no-referrer",
      "x-content-type-options": "nosniff",
    });
  })
  .openapi(root, (c) => c.redirect("/dashboard", 302) as never);
