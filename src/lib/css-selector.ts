/**
 * The CSS selector grammar the extraction supports: HTMLRewriter's. Shared by the create
 * route (a batch is refused up front for a selector it could never run) and the executor
 * (a selector that slipped through yields an empty list, not a failed page). Here, below
 * both, because it depends on nothing of the project, only on the runtime's HTMLRewriter.
 */

/**
 * Why HTMLRewriter would refuse `selector`, or null if it accepts it. It throws when a
 * handler is registered, so this registers one on a throwaway rewriter. Unsupported
 * there: `+`, `~`, `:last-child`, `:has()` and pseudo-elements, among others.
 */
export function validateSelector(selector: string): string | null {
  try {
    new HTMLRewriter().on(selector, {});
    return null;
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
}
