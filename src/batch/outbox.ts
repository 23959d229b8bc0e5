/**
 * The batch object's durable outbox towards its account object. Events are written in
 * the same synchronous step as the state change that causes them, then sent in order,
 * many per call, until the account acknowledges them. Every event is idempotent at the
 * account, so a send whose reply was lost is simply sent again.
 */
import type { AccountEvent } from "../domain/account-events";
import { all, first } from "../durable/sql";

export type SendEvents = (events: AccountEvent[]) => Promise<void>;

const MAX_EVENTS_PER_SEND = 500;

export class Outbox {
  #chain: Promise<boolean> = Promise.resolve(true);

  constructor(
    private readonly sql: SqlStorage,
    /** Replaceable so tests can make deliveries fail. */
    public send: SendEvents,
  ) {}

  /** Adds an event; an unsent status snapshot is replaced by the newer one. */
  add(event: AccountEvent): void {
    if (event.kind === "status") this.sql.exec("DELETE FROM outbox WHERE kind = 'status'");
    this.sql.exec("INSERT INTO outbox (kind, event, created_at) VALUES (?, ?, ?)", event.kind, JSON.stringify(event), Date.now());
  }

  size(): number {
    return first<{ n: number }>(this.sql, "SELECT count(*) AS n FROM outbox")?.n ?? 0;
  }

  /** Sends everything pending; flushes run one after another. Resolves true when empty. */
  flush(): Promise<boolean> {
    this.#chain = this.#chain.then(() => this.#drain());
    return this.#chain;
  }

  async #drain(): Promise<boolean> {
    for (;;) {
      const rows = all<{ seq: number; event: string }>(this.sql, "SELECT seq, event FROM outbox ORDER BY seq LIMIT ?", MAX_EVENTS_PER_SEND);
      if (rows.length === 0) return true;
      try {
        await this.send(rows.map((r) => JSON.parse(r.event) as AccountEvent));
      } catch (err) {
        console.error(JSON.stringify({ level: "warn", msg: "outbox delivery failed", events: rows.length, error: String(err) }));
        return false;
      }
      // Delete exactly what was sent: rows added during the await stay for the next round.
      this.sql.exec("DELETE FROM outbox WHERE seq IN (SELECT value FROM json_each(?))", JSON.stringify(rows.map((r) => r.seq)));
    }
  }
}
