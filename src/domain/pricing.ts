/** Credits charged per item, by output format. The only pricing table in the project. */
export const CREDITS_PER_ITEM = { json: 2, markdown: 1 } as const;

/**
 * Added to an item's price when the batch asks for AI extraction (`prompt` or `schema`):
 * each such item makes one Workers AI call. See docs/ai-extraction.md.
 */
export const AI_CREDITS_PER_ITEM = 5;

export type OutputFormat = keyof typeof CREDITS_PER_ITEM;
export const OUTPUT_FORMATS = Object.keys(CREDITS_PER_ITEM) as OutputFormat[];

/** The seed's figures (8 cancelled items refund 16 credits) assume the default output. */
export const DEFAULT_OUTPUT: OutputFormat = "json";

export function creditsPerItem(output: OutputFormat, options: { ai?: boolean } = {}): number {
  return CREDITS_PER_ITEM[output] + (options.ai ? AI_CREDITS_PER_ITEM : 0);
}
