/** Credits charged per item, by output format. The only pricing table in the project. */
export const CREDITS_PER_ITEM = {
  json: 2,
  markdown: 1,
  /**
   * A Firecrawl-style document (src/domain/scrape-options.ts): any of markdown, html, rawHtml
   * and links from one fetch, under one work budget. One credit, like Firecrawl's page.
   */
  document: 1,
} as const;

/**
 * Added to an item's price when the batch asks for AI extraction (`prompt` or `schema`):
 * each such item makes one Workers AI call. See docs/ai-extraction.md.
 */
export const AI_CREDITS_PER_ITEM = 5;

export type OutputFormat = keyof typeof CREDITS_PER_ITEM;
export const OUTPUT_FORMATS = Object.keys(CREDITS_PER_ITEM) as OutputFormat[];

/** What the primary API's `output` takes: a `document` is asked for through its formats (/v2). */
export const PRIMARY_OUTPUT_FORMATS = ["json", "markdown"] as const satisfies readonly OutputFormat[];

/** The seed's figures (8 cancelled items refund 16 credits) assume the default output. */
export const DEFAULT_OUTPUT: OutputFormat = "json";

export function creditsPerItem(output: OutputFormat, options: { ai?: boolean } = {}): number {
  return CREDITS_PER_ITEM[output] + (options.ai ? AI_CREDITS_PER_ITEM : 0);
}
