/**
 * Polls' answers, serialized, kept until anything in the object's storage changes. An SDK
 * waiter asks for the same page every second or two, and between two changes of a batch
 * the answer is the same string: building it again (item rows to views, ~6 µs an item) and
 * cloning it across RPC as objects cost more than the rest of the read.
 *
 * "Nothing changed" is SQLite's own count of rows this connection has written
 * (`total_changes()`): any INSERT, UPDATE or DELETE, in any table, drops every page. The
 * views depend on stored rows only (no clock), so a page built at count n is exact while
 * the count is n. An instance starts empty: memory only.
 */
import { first } from "../durable/sql";

/** Pages kept at once (a poller or two, each on a page or two), and the largest one kept. */
const MAX_PAGES = 8;
const MAX_PAGE_CHARS = 256 * 1024;

export class PageCache {
  #changes = -1;
  readonly #pages = new Map<string, string>();

  constructor(private readonly sql: SqlStorage) {}

  /** The page named `key` as stored now: kept, or `build()` (kept when small enough). */
  get(key: string, build: () => string): string {
    const changes = first<{ n: number }>(this.sql, "SELECT total_changes() AS n")?.n ?? -1;
    if (changes !== this.#changes) {
      this.#pages.clear();
      this.#changes = changes;
    }
    const kept = this.#pages.get(key);
    if (kept !== undefined) return kept;
    const json = build();
    if (json.length <= MAX_PAGE_CHARS) {
      if (this.#pages.size >= MAX_PAGES) this.#pages.delete(this.#pages.keys().next().value!);
      this.#pages.set(key, json);
    }
    return json;
  }
}
