/** Pages of a batch's items in some states, for surfaces that list only completed or only failed items. */
import type { ItemStatus } from "../domain/states";
import { all } from "../durable/sql";
import type { ItemRow } from "./rows";
import { type ItemView, itemView } from "./views";

/** One item and the cursor that pages on from just after it. */
export interface ItemEntry {
  cursor: string;
  item: ItemView;
}

/**
 * Up to `limit` items in `statuses` after index `cursor`, in order, and the cursor of the next
 * page (null at the end). Walks the primary key: each item is on exactly one page of a walk,
 * whatever settles meanwhile (an item that settles behind the cursor is seen by the next walk).
 */
export function itemsInState(
  sql: SqlStorage,
  batchId: string,
  statuses: readonly ItemStatus[],
  cursor: number,
  limit: number,
): { entries: ItemEntry[]; nextCursor: string | null } {
  const rows = all<ItemRow>(
    sql,
    "SELECT * FROM items WHERE idx > ? AND status IN (SELECT value FROM json_each(?)) ORDER BY idx LIMIT ?",
    cursor,
    JSON.stringify(statuses),
    limit + 1,
  );
  const page = rows.slice(0, limit);
  const nextCursor = rows.length > limit ? String(page[page.length - 1]!.idx) : null;
  return { entries: page.map((row) => ({ cursor: String(row.idx), item: itemView(row, batchId) })), nextCursor };
}
