/**
 * One line of a batch's results download, in NDJSON and in CSV. The line is the item as the
 * batch read shows it (src/batch/views.ts), plus the result itself where the read only
 * gives its URL.
 */
import type { ItemView, Json } from "../../batch/views";
import { csvRow, numberCell, textCell } from "./csv";

export interface ResultLine {
  index: number;
  itemId: string;
  customId: string | null;
  url: string;
  status: ItemView["status"];
  /** As on the batch read's items: the failure's message (or null), its machine code in `errorCode`. */
  error: ItemView["error"];
  errorCode: ItemView["errorCode"];
  creditsUsed: number;
  metadata: ItemView["metadata"];
  /** Parsed JSON for `output: json`, the Markdown text for `output: markdown`; null until completed. */
  result: Json | null;
}

export function resultLine(item: ItemView, result: Json | null): ResultLine {
  return {
    index: item.index,
    itemId: item.uuid,
    customId: item.customId,
    url: item.url,
    status: item.status,
    error: item.error,
    errorCode: item.errorCode,
    creditsUsed: item.creditsUsed,
    metadata: item.metadata,
    result,
  };
}

export const CSV_COLUMNS = [
  "index",
  "itemId",
  "customId",
  "url",
  "status",
  "errorCode",
  "errorMessage",
  "creditsUsed",
  "metadata",
  "result",
] as const;

export function ndjsonLine(line: ResultLine): string {
  return `${JSON.stringify(line)}\n`;
}

/** metadata and result as JSON cells (a Markdown result is a JSON string). */
export function csvLine(line: ResultLine): string {
  return csvRow([
    numberCell(line.index),
    textCell(line.itemId),
    textCell(line.customId),
    textCell(line.url),
    textCell(line.status),
    textCell(line.errorCode),
    textCell(line.error),
    numberCell(line.creditsUsed),
    textCell(line.metadata === null ? null : JSON.stringify(line.metadata)),
    textCell(line.result === null ? null : JSON.stringify(line.result)),
  ]);
}

export function csvHeader(): string {
  return csvRow([...CSV_COLUMNS]);
}
