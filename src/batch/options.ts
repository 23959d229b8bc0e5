/**
 * The batch's create options beyond output and selectors: main content only, AI extraction,
 * and the sealed cookies (docs/api.md). Stored on the batch row at create, handed to the
 * executor with every lease; the cookies are erased when the batch ends.
 */
import type { AiExtraction } from "../domain/executor-contract";
import { fail, type Failure } from "../domain/errors";
import { isTerminalBatch } from "../domain/states";
import type { BatchRow } from "./rows";

export interface BatchOptions {
  mainContentOnly: boolean;
  ai: AiExtraction | null;
  /** Sealed (src/lib/sealed-cookies.ts): this object never sees them in the clear. */
  cookies: string | null;
}

/** Writes the options of a batch being created (inside create's transaction). */
export function writeOptions(sql: SqlStorage, options: Partial<BatchOptions>): void {
  const cookies = options.cookies ?? null;
  sql.exec(
    "UPDATE batch SET main_content_only = ?, ai = ?, cookies_sealed = ?, had_cookies = ? WHERE id = 1",
    options.mainContentOnly ? 1 : 0,
    options.ai ? JSON.stringify(options.ai) : null,
    cookies,
    cookies === null ? 0 : 1,
  );
}

/** What a lease carries to the executor. */
export function leaseOptions(row: BatchRow): BatchOptions {
  return {
    mainContentOnly: row.main_content_only === 1,
    ai: row.ai === null ? null : (JSON.parse(row.ai) as AiExtraction),
    cookies: row.cookies_sealed,
  };
}

/** The row as it is to be written: an ended batch keeps no cookies (nothing will fetch with them again). */
export function eraseCookiesIfEnded(row: BatchRow): BatchRow {
  return isTerminalBatch(row.status) && row.cookies_sealed !== null ? { ...row, cookies_sealed: null } : row;
}

/** A retry after the end would fetch without the cookies the batch was created with: refused instead. */
export function retryRefusal(row: BatchRow): Failure | null {
  if (row.had_cookies !== 1 || row.cookies_sealed !== null) return null;
  return fail(
    "COOKIES_ERASED",
    "This batch's cookies were erased when it ended, and its items would run without them; create a new batch with the cookies instead.",
  );
}
