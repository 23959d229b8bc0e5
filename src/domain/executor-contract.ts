/**
 * The contract between the batch object and the executor, the one module both import (and
 * which imports neither): the queue message, the startItems and settleItems calls' requests
 * and answers, and where a result is stored. The executor reaches the batch object only
 * through Env's BATCH binding, whose stub these types describe.
 */
import { z } from "zod";
import type { DropReason } from "./batch-machine";
import type { OutputFormat } from "./pricing";
import type { ScrapeOptions } from "./scrape-options";

/** The queue message that asks the executor to run one item. */
export const ScrapeMessageSchema = z.object({
  v: z.literal(1),
  batchId: z.string().uuid(),
  itemId: z.string().uuid(),
  /** The item's dispatch token: a message from an older dispatch is dropped. */
  dispatch: z.number().int().positive(),
});

export type ScrapeMessage = z.infer<typeof ScrapeMessageSchema>;

/** A row of the batch object's `sends` outbox. */
export interface QueueSend {
  kind: "dispatch";
  body: ScrapeMessage;
  delaySeconds: number;
}

/** Items one startItems or settleItems call may name (a queue batch holds at most 100 messages). */
export const MAX_ITEMS_PER_CALL = 100;

/** A batch's AI extraction (docs/ai-extraction.md): what to ask the model, and the JSON Schema its answer must fit. */
export interface AiExtraction {
  prompt: string;
  /** A JsonSchema (src/domain/json-schema.ts), typed shallow: a record of unknowns does not cross RPC typing. */
  schema: object | null;
}

/** startItems' answer for one request: a lease to run the item, or why it must not run. */
export type StartResult =
  | {
      action: "run";
      batchId: string;
      itemId: string;
      attempt: number;
      url: string;
      output: OutputFormat;
      selectors: Record<string, string> | null;
      /** How to fetch and what to build (formats, tags, headers, timeout); null: the defaults. */
      options?: ScrapeOptions | null;
      leaseExpiresAt: number;
      /** Extract the main content only (drop navigation, headers, footers, banners). Absent: false. */
      mainContentOnly?: boolean;
      /** Absent or null: no AI extraction. */
      ai?: AiExtraction | null;
      /** The batch's cookies, sealed (src/lib/sealed-cookies.ts); only the executor opens them. Absent or null: none. */
      cookies?: string | null;
    }
  | { action: "drop"; reason: DropReason | "TOO_MANY_ITEMS" };

/** What the executor learned about the page, kept on the item beside the inline result. */
export interface ResultMeta {
  resultKey?: string | null;
  statusCode?: number | null;
  finalUrl?: string | null;
  durationMs?: number | null;
}

export type SettleResult =
  | { ok: true; outcome: "settled" | "duplicate" | "requeued" }
  | { ok: true; outcome: "ignored"; reason: string };

export interface ItemError {
  code: string;
  message: string;
}

/** One queue message's ask: start this item (for this dispatch). */
export interface StartRequest {
  itemId: string;
  dispatch?: number;
}

/** What the executor reports about one leased item. */
export type SettleReport =
  | { itemId: string; attempt: number; outcome: "completed"; result: unknown; meta?: ResultMeta }
  | {
      itemId: string;
      attempt: number;
      outcome: "failed";
      error: ItemError;
      /** With attempts left, a retryable failure puts the item back to pending (no credit moves). */
      retryable?: boolean;
      retryAfterSeconds?: number;
      meta?: ResultMeta;
    };

/** Where an item's result is stored in R2; retention deletes everything under resultKey(batchId, ""). */
export function resultKey(batchId: string, itemId: string): string {
  return `results/${batchId}/${itemId}`;
}
