/**
 * The items of GET /api/batch/scrape/:id. A page (cursor, limit) as before; without either,
 * every item of the batch at once, because Spidra's clients never follow a cursor and would
 * lose items past the first page without knowing. That answer stays bounded: inline results
 * are sent until ALL_ITEMS_INLINE_BYTES; past it a result goes by URL only (`result: null`,
 * `resultUrl` set), as results over the executor's inline size always do.
 */
import { all, first } from "../durable/sql";
import type { ItemRow } from "./rows";
import { type ItemView, itemView } from "./views";

/** Bytes of inline results one all-items answer carries at most (then results go by URL). */
export const ALL_ITEMS_INLINE_BYTES = 1024 * 1024;

export function itemsPage(
  sql: SqlStorage,
  batchId: string,
  cursor: number,
  limit: number,
): { items: ItemView[]; nextCursor: string | null } {
  const rows = all<ItemRow>(sql, "SELECT * FROM items WHERE idx > ? ORDER BY idx LIMIT ?", cursor, limit + 1);
  const page = rows.slice(0, limit);
  const nextCursor = rows.length > limit ? String(page[page.length - 1]!.idx) : null;
  return { items: page.map((item) => itemView(item, batchId)), nextCursor };
}

type Meta = Omit<ItemRow, "result"> & { result_bytes: number | null };

/**
 * Every item (a batch holds at most MAX_URLS_PER_BATCH). Reads each row without its result,
 * then reads the results it will inline, one by one, while they fit the budget. A result
 * with no stored copy (no result_key: nothing to point at) is always inline.
 */
export function allItems(sql: SqlStorage, batchId: string): { items: ItemView[]; nextCursor: null } {
  const rows = all<Meta>(
    sql,
    `SELECT idx, id, url, status, round, attempts, lease_attempt, lease_expires_at, error, credits_used, started_at,
            finished_at, dispatch_token, dispatched_at, not_before, result_key, status_code, final_url, duration_ms,
            length(CAST(result AS BLOB)) AS result_bytes
     FROM items ORDER BY idx`,
  );
  let budget = ALL_ITEMS_INLINE_BYTES;
  const items = rows.map(({ result_bytes, ...meta }) => {
    let result: string | null = null;
    if (result_bytes !== null && (result_bytes <= budget || meta.result_key === null)) {
      result = first<{ result: string }>(sql, "SELECT result FROM items WHERE idx = ?", meta.idx)!.result;
      budget -= result_bytes;
    }
    return itemView({ ...meta, result }, batchId);
  });
  return { items, nextCursor: null };
}
