/** The Firecrawl-compatible surface's request and response shapes (Firecrawl v2 API reference). */
import { z } from "@hono/zod-openapi";
import { LIMITS } from "../../domain/limits";
import { DOCUMENT_FORMATS, SCRAPE_LIMITS } from "../../domain/scrape-options";

const refusedUnless = (what: string) =>
  z
    .unknown()
    .optional()
    .openapi({ description: `Accepted only as ${what}; any other value is refused with 400.` });

const FormatEntry = z
  .union([z.string().max(64), z.object({ type: z.string().max(64) }).catchall(z.unknown())])
  .openapi({
    description: `${DOCUMENT_FORMATS.join(", ")} (as a name or { type }), and json ({ type: "json", prompt?, schema? }: AI extraction, refused where AI is off; docs/firecrawl.md); other Firecrawl formats are refused.`,
  });

const TagList = z
  .array(z.string().min(1).max(SCRAPE_LIMITS.maxSelectorChars))
  .max(SCRAPE_LIMITS.maxTagSelectors)
  .optional();

export const WebhookSchema = z
  .union([
    z.string().max(LIMITS.maxUrlLength),
    z
      .object({
        url: z.string().max(LIMITS.maxUrlLength),
        headers: z.record(z.string(), z.unknown()).optional().openapi({ description: "Refused unless empty." }),
        metadata: z.record(z.string(), z.unknown()).optional().openapi({ description: "Refused unless empty." }),
        events: z
          .array(z.enum(["started", "page", "completed", "failed"]))
          .max(4)
          .optional()
          .openapi({ description: "Every event is sent; a list that leaves any out is refused." }),
      })
      .strict(),
  ])
  .openapi({ description: "Our signed webhooks (docs/webhooks.md) to this https URL." });

export const FirecrawlCreateBody = z
  .object({
    urls: z.array(z.string().max(LIMITS.maxUrlLength)).min(1, "must contain at least one URL"),
    formats: z.array(FormatEntry).min(1).max(10).optional().openapi({ description: 'Default ["markdown"].' }),
    onlyMainContent: z.boolean().optional().openapi({
      description:
        "Default true (Firecrawl's default): navigation, the site header, footers, asides, forms and banners are dropped before markdown, html, links and the json format's input are built (rawHtml stays the page as fetched); false keeps the whole page.",
    }),
    includeTags: TagList.openapi({ description: "CSS selectors: keep only what they match." }),
    excludeTags: TagList.openapi({ description: "CSS selectors: remove what they match." }),
    headers: z
      .record(z.string(), z.string())
      .optional()
      .openapi({
        description: `At most ${SCRAPE_LIMITS.maxHeaders} headers; hop-by-hop, Host, Cookie, Authorization-like and User-Agent are refused.`,
      }),
    timeout: z
      .number()
      .int("must be a whole number of milliseconds")
      .min(SCRAPE_LIMITS.minTimeoutMs)
      .max(SCRAPE_LIMITS.maxTimeoutMs)
      .optional()
      .openapi({ description: "Milliseconds; capped at this deployment's fetch deadline (FETCH_TIMEOUT_MS)." }),
    maxAge: z.number().int().min(0).optional().openapi({
      description: "Accepted: every page is fetched fresh, which satisfies any maximum age.",
    }),
    waitFor: refusedUnless("0 (no browser here)"),
    mobile: refusedUnless("false"),
    skipTlsVerification: refusedUnless("false (certificates are always verified)"),
    parsers: refusedUnless("[] (PDFs are not parsed)"),
    actions: refusedUnless("[] (no browser here)"),
    location: refusedUnless("absent"),
    removeBase64Images: refusedUnless("absent"),
    blockAds: refusedUnless("false (pages are fetched without their subresources)"),
    proxy: refusedUnless("absent"),
    minAge: refusedUnless("absent"),
    storeInCache: refusedUnless("false (there is no shared cache)"),
    fastMode: refusedUnless("false"),
    useMock: refusedUnless("absent"),
    lockdown: refusedUnless("false"),
    redactPII: refusedUnless("false"),
    threatProtection: refusedUnless("absent"),
    auditMetadata: refusedUnless("absent"),
    profile: refusedUnless("absent"),
    zeroDataRetention: refusedUnless("false (results are kept for the retention period)"),
    appendToId: refusedUnless("absent"),
    webhook: WebhookSchema.optional(),
    maxConcurrency: z.number().int("must be a whole number").min(1).max(LIMITS.maxConcurrency).optional(),
    ignoreInvalidURLs: z.boolean().optional().openapi({
      description: "Default true: URLs that can never be fetched are left out and listed in invalidURLs.",
    }),
    integration: z.string().max(256).optional().openapi({ description: "Informational; not stored." }),
    origin: z.string().max(256).optional().openapi({ description: "Informational (the SDK sends it); not stored." }),
  })
  .strict()
  .openapi("FirecrawlBatchScrapeRequest", {
    example: { urls: ["https://example.com/a", "https://example.com/b"], formats: ["markdown", "links"] },
  });

export type FirecrawlCreateInput = z.output<typeof FirecrawlCreateBody>;

export const FirecrawlError = z
  .object({ success: z.literal(false), error: z.string(), code: z.string() })
  .openapi("FirecrawlError");

export const FirecrawlDocument = z
  .object({
    markdown: z.string().optional(),
    html: z.string().optional(),
    rawHtml: z.string().optional(),
    links: z.array(z.string()).optional(),
    json: z.unknown().optional().openapi({ description: "The model's answer, with the json format." }),
    metadata: z.object({
      sourceURL: z.string(),
      url: z.string(),
      statusCode: z.number().int(),
      title: z.string().optional(),
      description: z.string().optional(),
      language: z.string().optional(),
      error: z.string().optional(),
    }),
  })
  .openapi("FirecrawlDocument");
