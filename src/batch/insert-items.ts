/**
 * Writes a new batch's items: one INSERT per ~1 MB of URL JSON through json_each (SQLite
 * caps one bound value at 2 MB), each item with a fresh random id. The bench's bare object
 * calls this too, so its baseline runs the very same statements.
 */

/** Max bytes of URL JSON bound to one insert statement. */
const INSERT_CHUNK_BYTES = 1_000_000;

export function insertItems(sql: SqlStorage, urls: readonly string[]): void {
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
