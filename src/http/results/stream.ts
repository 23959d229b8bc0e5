/**
 * A batch's results as one stream, in constant memory: the items are read a page at a time
 * through the batch object's own item read (the one GET uses, so every read rule applies),
 * and only when the reader asks for more (a pull-based ReadableStream: a slow reader holds
 * the paging back). Stored results are read from R2 a few at a time (RESULT_READS_AHEAD, in
 * input order). At most one page of item views and that many result bodies are held at
 * once, whatever the batch's size. A reader that goes away cancels the stream, and no
 * further page or result is read.
 */
import type { ItemView, Json } from "../../batch/views";

export interface ItemPage {
  items: ItemView[];
  /** The cursor of the next page, or null after the last. */
  nextCursor: number | null;
}

export interface ResultsSource {
  /** The first page, read before the response starts (so a missing batch is a plain error). */
  first: ItemPage;
  /** The page after `cursor`. */
  page(cursor: number): Promise<ItemPage>;
  /** The item's result: inline on the view, or read from storage; null when there is none. */
  resultOf(item: ItemView): Promise<Json | null>;
  /** Items left out (the `status` filter). */
  keep(item: ItemView): boolean;
  /** The item's line, its result included. */
  line(item: ItemView, result: Json | null): string;
  /** Text before the first line (the CSV header), if any. */
  head?: string;
}

/** Bytes one pull gathers before handing them on: small lines go out together, big ones alone. */
const PULL_BYTES = 64 * 1024;
/** Results read at once, ahead of the line being written (a stored one is an R2 round trip). */
export const RESULT_READS_AHEAD = 4;

export function resultsStream(source: ResultsSource): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let page = source.first;
  let pos = 0;
  let cancelled = false;
  let headSent = source.head === undefined;
  /** Results being read for the items at these positions of `page` (kept items only). */
  let ahead = new Map<number, Promise<Json | null>>();
  /** Positions of `page` before this one have been looked at by readAhead (each once). */
  let scanned = 0;

  /** Starts reading the results of the next kept items of the page, up to RESULT_READS_AHEAD at once. */
  const readAhead = () => {
    for (; scanned < page.items.length && ahead.size < RESULT_READS_AHEAD; scanned++) {
      const item = page.items[scanned]!;
      if (!source.keep(item)) continue;
      const reading = source.resultOf(item);
      reading.catch(() => undefined); // a read left behind by a cancel must not be an unhandled rejection
      ahead.set(scanned, reading);
    }
  };

  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        let out = headSent ? "" : source.head!;
        headSent = true;
        while (!cancelled && out.length < PULL_BYTES) {
          if (pos >= page.items.length) {
            if (page.nextCursor === null) {
              if (out) controller.enqueue(encoder.encode(out));
              controller.close();
              return;
            }
            page = await source.page(page.nextCursor);
            pos = 0;
            scanned = 0;
            ahead = new Map();
            continue;
          }
          const at = pos++;
          const item = page.items[at]!;
          if (!source.keep(item)) continue;
          readAhead();
          const result = ahead.get(at)!;
          ahead.delete(at);
          out += source.line(item, await result);
          if (!cancelled) readAhead();
        }
        if (!cancelled && out) controller.enqueue(encoder.encode(out));
      },
      cancel() {
        cancelled = true;
      },
    },
    // One pull's text (up to PULL_BYTES and one line) waiting at a time.
    { highWaterMark: 1 },
  );
}
