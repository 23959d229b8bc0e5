// The API reference's browser bundle, imported as bytes: wrangler.toml's `rules` make it a
// Data module (an ArrayBuffer), not code that runs in the Worker.
declare module "*/api-reference/dist/browser/standalone.js" {
  const bytes: ArrayBuffer;
  export default bytes;
}
