/**
 * Firecrawl's batch status page: a batch's completed documents in item order, in pages of at
 * most FIRECRAWL_PAGE_SIZE documents and about FIRECRAWL_PAGE_BYTES bytes (Firecrawl's 10 MiB;
 * a page always holds at least one document), `next` pointing just past the last one. A
 * document is read from the item's inline result when it has one, else from R2.
 */
import type { ItemEntry } from "../../batch/item-pages";
import type { BatchView } from "../../batch/views";
import { resultKey } from "../../domain/executor-contract";
import type { PageDocument } from "../../domain/page-document";
import type { Env } from "../../env";
import { positiveInt } from "../../lib/positive-int";
import { batchObject, unwrap } from "../objects";

export const DEFAULT_PAGE_SIZE = 100;
export const MAX_PAGE_SIZE = 1000;
export const DEFAULT_PAGE_BYTES = 10 * 1024 * 1024;
/** R2 reads in flight at once: a page stops reading as soon as it is full. */
const READS_AT_ONCE = 6;

export interface DocumentPage {
  batch: BatchView;
  documents: PageDocument[];
  /** Where the next page starts, or null when this one reached the end. */
  nextCursor: string | null;
}

export async function documentPage(
  env: Env,
  accountId: string,
  batchId: string,
  cursor: number,
): Promise<DocumentPage> {
  const size = Math.min(positiveInt(env.FIRECRAWL_PAGE_SIZE, DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE);
  const maxBytes = positiveInt(env.FIRECRAWL_PAGE_BYTES, DEFAULT_PAGE_BYTES);
  const found = unwrap(await batchObject(env, batchId).itemsIn(accountId, ["completed"], cursor, size));
  const documents: PageDocument[] = [];
  let bytes = 0;
  for (let at = 0; at < found.entries.length; at += READS_AT_ONCE) {
    const chunk = found.entries.slice(at, at + READS_AT_ONCE);
    const read = await Promise.all(chunk.map((entry) => readDocument(env, found.batch, entry)));
    for (const [i, doc] of read.entries()) {
      const length = JSON.stringify(doc).length;
      if (documents.length > 0 && bytes + length > maxBytes) {
        // Full: the next page starts with this document.
        return { batch: found.batch, documents, nextCursor: found.entries[at + i - 1]!.cursor };
      }
      documents.push(doc);
      bytes += length;
    }
  }
  return { batch: found.batch, documents, nextCursor: found.nextCursor };
}

/**
 * The item's document. A batch made on the primary API reads as one too: a markdown result as
 * `markdown`, a json result as its `links` and metadata (its selector results stay on /api),
 * an AI answer as `markdown` (text) or `json`.
 * A result no longer stored reads as metadata with `error` saying so.
 */
async function readDocument(env: Env, batch: BatchView, { item }: ItemEntry): Promise<PageDocument> {
  const metadata: PageDocument["metadata"] = {
    sourceURL: item.url,
    url: item.finalUrl ?? item.url,
    statusCode: item.statusCode ?? 200,
  };
  let stored: unknown = item.result;
  if (stored === null) {
    const object = await env.RESULTS.get(resultKey(batch.batchId, item.uuid));
    if (!object) return { metadata: { ...metadata, error: "The stored result of this page is no longer available." } };
    // An AI item's result is JSON whatever the output (src/executor/run-item.ts).
    const json = object.httpMetadata?.contentType?.startsWith("application/json") ?? batch.output !== "markdown";
    stored = json ? await object.json() : await object.text();
  }
  if (batch.output === "document") return stored as PageDocument;
  const ai = aiResult(stored);
  // A prompt's answer (an /api batch with AI): text as markdown, JSON as Firecrawl's `json`.
  if (ai) return typeof ai.content === "string" ? { markdown: ai.content, metadata } : { json: ai.content, metadata };
  if (batch.output === "markdown") return { markdown: String(stored), metadata };
  const page = stored as { title?: string | null; description?: string | null; lang?: string | null; links?: string[] };
  return {
    links: page.links ?? [],
    metadata: {
      ...metadata,
      ...(page.title ? { title: page.title } : {}),
      ...(page.description ? { description: page.description } : {}),
      ...(page.lang ? { language: page.lang } : {}),
    },
  };
}

/** The result of an AI item made on /api: `{ url, finalUrl, statusCode, content, ai }`. */
function aiResult(stored: unknown): { content: unknown } | null {
  if (typeof stored !== "object" || stored === null) return null;
  return "ai" in stored && "content" in stored ? { content: stored.content } : null;
}
