/** Pages of a batch's items in one state, for surfaces that list only completed or only failed items. */
import type { ItemStatus } from "../domain/states";
import { all } from "../durable/sql";
import type { ItemRow } from "./rows";
import { type ItemView, itemView } from "./views";

/**
 * Up to `limit` items in `status` after index `cursor`, and the cursor of the next page (null
 * at the end). Walks the primary key in order: each item is on exactly one page, whatever
 * settles meanwhile (an item that settles behind the cursor waits for the next walk).
 */
export function itemsInState(
  sql: SqlStorage,
  batchId: string,
  status: ItemStatus,
  cursor: number,
  limit: number,
): { items: ItemView[]; nextCursor: string | null } {
  const rows = all<ItemRow>(
    sql,
    "SELECT * FROM items WHERE idx > ? AND status = ? ORDER BY idx LIMIT ?",
    cursor,
    status,
    limit + 1,
  );
  const page = rows.slice(0, limit);
  const nextCursor = rows.length > limit ? String(page[page.length - 1]!.idx) : null;
  return { items: page.map((item) => itemView(item, batchId)), nextCursor };
}
