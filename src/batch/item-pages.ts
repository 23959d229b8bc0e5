/**
 * The items of GET /api/batch/scrape/:id. A page (cursor, limit) as before; without either,
 * every item of the batch at once, because Spidra's clients never follow a cursor and would
 * lose items past the first page without knowing. That answer stays bounded: inline results
 * are sent until ALL_ITEMS_INLINE_BYTES; past it a result goes by URL only (`result: null`,
 * `resultUrl` set), as results over the executor's inline size always do. Rows are read
 * through item-rows.ts, so a cancelled batch's unswept rows read cancelled here too.
 */
import type { ItemStatus } from "../domain/states";
import { allItemsButResults, type ItemReadContext, itemResult, itemsAfter, itemsInStatesAfter } from "./item-rows";
import type { BatchRow } from "./rows";
import { type ItemView, itemView } from "./views";

/** Bytes of inline results one all-items answer carries at most (then results go by URL). */
export const ALL_ITEMS_INLINE_BYTES = 1024 * 1024;

type Batch = ItemReadContext & Pick<BatchRow, "batch_id">;

export function itemsPage(
  sql: SqlStorage,
  batch: Batch,
  cursor: number,
  limit: number,
): { items: ItemView[]; nextCursor: string | null } {
  const rows = itemsAfter(sql, batch, cursor, limit);
  const page = rows.slice(0, limit);
  const nextCursor = rows.length > limit ? String(page[page.length - 1]!.idx) : null;
  return { items: page.map((item) => itemView(item, batch.batch_id)), nextCursor };
}

/**
 * Every item (a batch holds at most MAX_URLS_PER_BATCH). Reads each row without its result,
 * then reads the results it will inline, one by one, while they fit the budget. A result
 * with no stored copy (no result_key: nothing to point at) is always inline.
 */
export function allItems(sql: SqlStorage, batch: Batch): { items: ItemView[]; nextCursor: null } {
  let budget = ALL_ITEMS_INLINE_BYTES;
  const items = allItemsButResults(sql, batch).map(({ result_bytes, ...row }) => {
    let result: string | null = null;
    if (result_bytes !== null && (result_bytes <= budget || row.result_key === null)) {
      result = itemResult(sql, row.idx);
      budget -= result_bytes;
    }
    return itemView({ ...row, result }, batch.batch_id);
  });
  return { items, nextCursor: null };
}

/** One item and the cursor that pages on from just after it. */
export interface ItemEntry {
  cursor: string;
  item: ItemView;
}

/**
 * Up to `limit` items in `statuses` after index `cursor`, in order, and the cursor of the next
 * page (null at the end), for surfaces that list only completed or only failed items. Walks the
 * primary key: each item is on exactly one page of a walk, whatever settles meanwhile (an item
 * that settles behind the cursor is seen by the next walk).
 */
export function itemsInState(
  sql: SqlStorage,
  batch: Batch,
  statuses: readonly ItemStatus[],
  cursor: number,
  limit: number,
): { entries: ItemEntry[]; nextCursor: string | null } {
  const rows = itemsInStatesAfter(sql, batch, statuses, cursor, limit);
  const page = rows.slice(0, limit);
  const nextCursor = rows.length > limit ? String(page[page.length - 1]!.idx) : null;
  return {
    entries: page.map((row) => ({ cursor: String(row.idx), item: itemView(row, batch.batch_id) })),
    nextCursor,
  };
}
