/**
 * What polls read, kept until anything in the object's storage changes: the batch row, and
 * the answers, serialized. An SDK waiter asks for the same page every second or two, and
 * between two changes of a batch the answer is the same string: building it again (item
 * rows to views, ~6 µs an item) and cloning it across RPC as objects cost more than the
 * rest of the read. The batch row is read by every call of the object (its owner, its
 * state), once or twice a call: kept, it is one small statement instead of a 40-column row.
 *
 * "Nothing changed" is SQLite's own count of rows this connection has written
 * (`total_changes()`): any INSERT, UPDATE or DELETE, in any table, drops everything kept.
 * What is kept depends on stored rows only (no clock), so what was read at count n is exact
 * while the count is n. `storage.deleteAll()` may not count as changes: whoever calls it
 * calls `clear()`. An instance starts empty: memory only.
 */
import { first } from "../durable/sql";

/** Pages kept at once (a poller or two, each on a page or two), and the largest one kept. */
const MAX_PAGES = 8;
const MAX_PAGE_CHARS = 256 * 1024;

export class ReadCache<Row extends object> {
  #changes = -1;
  #row: Readonly<Row> | undefined;
  readonly #pages = new Map<string, string>();

  constructor(private readonly sql: SqlStorage) {}

  /** The row as stored now: kept, or `read()` (frozen: one object is handed to many callers). */
  row(read: () => Row | undefined): Readonly<Row> | undefined {
    this.#sync();
    this.#row ??= freeze(read());
    return this.#row;
  }

  /** The page named `key` as stored now: kept, or `build()` (kept when small enough). */
  page(key: string, build: () => string): string {
    this.#sync();
    const kept = this.#pages.get(key);
    if (kept !== undefined) return kept;
    const json = build();
    if (json.length <= MAX_PAGE_CHARS) {
      if (this.#pages.size >= MAX_PAGES) this.#pages.delete(this.#pages.keys().next().value!);
      this.#pages.set(key, json);
    }
    return json;
  }

  /** Forgets everything kept (after `storage.deleteAll()`). */
  clear(): void {
    this.#changes = -1;
    this.#row = undefined;
    this.#pages.clear();
  }

  #sync(): void {
    const changes = first<{ n: number }>(this.sql, "SELECT total_changes() AS n")?.n ?? -1;
    if (changes !== this.#changes) {
      this.clear();
      this.#changes = changes;
    }
  }
}

function freeze<T extends object>(row: T | undefined): Readonly<T> | undefined {
  return row === undefined ? undefined : Object.freeze(row);
}
