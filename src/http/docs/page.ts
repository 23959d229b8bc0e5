/**
 * The API reference page: no inline script, only same-origin ones; Scalar's bundle mounts
 * itself on `#api-reference` and reads its settings from `data-configuration`.
 * Every setting below that would reach a Scalar host is turned off; the CSP in ./index.ts
 * blocks whatever might still try.
 */

/** Scalar's settings (https://scalar.com/products/api-references/configuration). */
const CONFIGURATION = {
  url: "/openapi.json",
  // Fonts come from fonts.scalar.com otherwise: use the system's.
  withDefaultFonts: false,
  telemetry: false,
  // Both are on by default on localhost and talk to Scalar's services (agent chat, MCP, registry).
  showDeveloperTools: "never",
  agent: { disabled: true },
  mcp: { disabled: true },
};

const escapeAttribute = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/"/g, "&quot;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** The page; `scripts` run in order (same-origin paths). */
export function docsHtml(scripts: string[]): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Batch scrape API</title>
</head>
<body>
<div id="api-reference" data-configuration="${escapeAttribute(JSON.stringify(CONFIGURATION))}"></div>
${scripts.map((src) => `<script src="${escapeAttribute(src)}"></script>\n`).join("")}</body>
</html>
`;
}
