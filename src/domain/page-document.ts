/**
 * A `document` result as stored in R2 (and shown inline when small): Firecrawl's page
 * document. The executor writes it; compatible surfaces read it back as it is.
 */
export interface PageDocument {
  markdown?: string;
  html?: string;
  rawHtml?: string;
  links?: string[];
  /** With Firecrawl's json format: the model's answer (AI extraction, docs/ai-extraction.md). */
  json?: unknown;
  metadata: {
    /** The URL as the batch gave it. */
    sourceURL: string;
    /** Where the page came from, after redirects. */
    url: string;
    statusCode: number;
    title?: string;
    description?: string;
    language?: string;
    /** Set on the documents of failed items (never stored: added when read). */
    error?: string;
  };
}
