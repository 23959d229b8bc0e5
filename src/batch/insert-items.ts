/**
 * Writes a new batch's items: one INSERT per ~1 MB of URL JSON through json_each (SQLite
 * caps one bound value at 2 MB), each item with a fresh random id. The bench's bare object
 * calls this too, so its baseline runs the very same statements.
 */

import type { ItemLabel } from "../domain/item-inputs";

/** Max bytes of URL JSON bound to one insert statement. */
const INSERT_CHUNK_BYTES = 1_000_000;

/** `labels`: each item's customId and metadata, in the order of `urls` (null: none has any). */
export function insertItems(
  sql: SqlStorage,
  urls: readonly string[],
  labels: readonly ItemLabel[] | null = null,
): void {
  if (labels !== null) {
    insertLabelled(sql, urls, labels);
    return;
  }
  let start = 0;
  while (start < urls.length) {
    let end = start;
    let bytes = 0;
    const chunk: [string, string][] = [];
    while (end < urls.length && (chunk.length === 0 || bytes < INSERT_CHUNK_BYTES)) {
      const url = urls[end]!;
      chunk.push([crypto.randomUUID(), url]);
      bytes += url.length + 48;
      end++;
    }
    sql.exec(
      `INSERT INTO items (idx, id, url, status)
       SELECT ? + key, json_extract(value, '$[0]'), json_extract(value, '$[1]'), 'pending' FROM json_each(?)`,
      start,
      JSON.stringify(chunk),
    );
    start = end;
  }
}

/** As insertItems, with each item's customId and metadata in the same statement. */
function insertLabelled(sql: SqlStorage, urls: readonly string[], labels: readonly ItemLabel[]): void {
  let start = 0;
  while (start < urls.length) {
    let end = start;
    let bytes = 0;
    const chunk: [string, string, string | null, string | null][] = [];
    while (end < urls.length && (chunk.length === 0 || bytes < INSERT_CHUNK_BYTES)) {
      const url = urls[end]!;
      const label = labels[end]!;
      chunk.push([crypto.randomUUID(), url, label.customId, label.metadata]);
      bytes += url.length + (label.customId?.length ?? 0) + (label.metadata?.length ?? 0) + 64;
      end++;
    }
    sql.exec(
      `INSERT INTO items (idx, id, url, status, custom_id, metadata)
       SELECT ? + key, json_extract(value, '$[0]'), json_extract(value, '$[1]'), 'pending',
              json_extract(value, '$[2]'), json_extract(value, '$[3]') FROM json_each(?)`,
      start,
      JSON.stringify(chunk),
    );
    start = end;
  }
}
