/**
 * A durable outbox in the batch object. Events are written in the same synchronous step
 * as the state change that causes them, then sent in order, many per call, until the
 * receiver acknowledges them. Receivers are idempotent (the account by key, the queue
 * consumer through the batch object's dispatch tokens), so a send whose reply was lost
 * is simply sent again. Two instances in the batch object: `toAccount` (table `outbox`)
 * and `toQueue` (table `sends`). The table names are stored data: they stay.
 */
import { all, first } from "../durable/sql";
import { log } from "../lib/log";

export type Send<E> = (events: E[]) => Promise<void>;

export class Outbox<E extends { kind: string }> {
  #chain: Promise<boolean> = Promise.resolve(true);
  #added = false;

  constructor(
    private readonly sql: SqlStorage,
    /** A table with columns (seq, kind, event, created_at). */
    private readonly table: "outbox" | "sends",
    /** Replaceable so tests can make deliveries fail. */
    public send: Send<E>,
    private readonly maxPerSend = 500,
  ) {}

  /** Adds an event; an unsent event of a kind listed in `replaces` is dropped for it. */
  add(event: E, options: { replacesSameKind?: boolean } = {}): void {
    if (options.replacesSameKind) this.sql.exec(`DELETE FROM ${this.table} WHERE kind = ?`, event.kind);
    this.sql.exec(
      `INSERT INTO ${this.table} (kind, event, created_at) VALUES (?, ?, ?)`,
      event.kind,
      JSON.stringify(event),
      Date.now(),
    );
    this.#added = true;
  }

  /** Whether add() ran since the last time this was asked: the owner then schedules a flush. */
  takeAdded(): boolean {
    const added = this.#added;
    this.#added = false;
    return added;
  }

  size(): number {
    return first<{ n: number }>(this.sql, `SELECT count(*) AS n FROM ${this.table}`)?.n ?? 0;
  }

  /** Whether anything waits to be sent: cheaper than size() on a hot path. */
  hasPending(): boolean {
    return first(this.sql, `SELECT 1 AS x FROM ${this.table} LIMIT 1`) !== undefined;
  }

  /** Sends everything pending; flushes run one after another. Resolves true when empty. */
  flush(): Promise<boolean> {
    this.#chain = this.#chain.then(() => this.#drain());
    return this.#chain;
  }

  async #drain(): Promise<boolean> {
    for (;;) {
      const rows = all<{ seq: number; event: string }>(
        this.sql,
        `SELECT seq, event FROM ${this.table} ORDER BY seq LIMIT ?`,
        this.maxPerSend,
      );
      if (rows.length === 0) return true;
      try {
        await this.send(rows.map((r) => JSON.parse(r.event) as E));
      } catch (err) {
        log("warn", "outbox delivery failed", { table: this.table, events: rows.length, error: String(err) });
        return false;
      }
      // Delete exactly what was sent: rows added during the await stay for the next round.
      this.sql.exec(
        `DELETE FROM ${this.table} WHERE seq IN (SELECT value FROM json_each(?))`,
        JSON.stringify(rows.map((r) => r.seq)),
      );
    }
  }
}
