/**
 * The baseline: a Durable Object with the real objects' SQLite schema and none of their
 * logic. What it does per RPC call, or per statement in a plain loop, is what the
 * platform gives one object on this machine at this moment; every bench figure is
 * printed as a ratio to one of these, measured in the same run, because the machines
 * are shared and noisy.
 */
import { DurableObject } from "cloudflare:workers";
import { ACCOUNT_MIGRATIONS } from "../src/account/schema";
import { insertItems } from "../src/batch/insert-items";
import { BATCH_MIGRATIONS } from "../src/batch/schema";
import { migrate } from "../src/durable/sql";
import type { Env } from "../src/env";

export type BareSchema = "counter" | "batch" | "account";

export class BareObject extends DurableObject<Env> {
  private readonly sql = this.ctx.storage.sql;

  /** "counter": one row to bump; "batch" / "account": the real objects' tables, empty. */
  setup(schema: BareSchema): void {
    if (schema === "batch") migrate(this.sql, BATCH_MIGRATIONS);
    else if (schema === "account") migrate(this.sql, ACCOUNT_MIGRATIONS);
    else {
      this.sql.exec("CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)");
      this.sql.exec("INSERT OR IGNORE INTO counter (id, n) VALUES (1, 0)");
    }
  }

  /** The RPC baseline's unit of work: one single-row UPDATE, committed on return. */
  bump(): void {
    this.sql.exec("UPDATE counter SET n = n + 1 WHERE id = 1");
  }

  /** `n` single-row UPDATEs in a plain loop: SQLite's statement rate with no RPC at all. */
  bumpLoop(n: number): { ms: number } {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) this.sql.exec("UPDATE counter SET n = n + 1 WHERE id = 1");
    return { ms: performance.now() - t0 };
  }

  /** The items insert BatchObject.create does (the same function), alone. */
  insertItems(urls: string[]): { ms: number; bytes: number } {
    const t0 = performance.now();
    this.ctx.storage.transactionSync(() => insertItems(this.sql, urls));
    return { ms: performance.now() - t0, bytes: this.sql.databaseSize };
  }

  /** What-if for the scaling notes: the (status, idx) index the schema had until v7. */
  addStatusIndex(): void {
    this.sql.exec("CREATE INDEX IF NOT EXISTS items_status ON items (status, idx)");
  }

  /** What a cancel must do to the items (pending -> cancelled, through both partial indexes), alone. */
  cancelItems(): { ms: number; rows: number } {
    const t0 = performance.now();
    let rows = 0;
    for (const dispatched of ["IS NULL", "IS NOT NULL"]) {
      rows += this.sql.exec(
        `UPDATE items SET status = 'cancelled', finished_at = ? WHERE status = 'pending' AND dispatched_at ${dispatched}`,
        Date.now(),
      ).rowsWritten;
    }
    const ms = performance.now() - t0;
    return { ms, rows };
  }

  /** `n` ledger rows (unique keys, as the account writes them) in one transaction: the raw ledger write rate. */
  insertLedger(n: number, prefix: string): { ms: number } {
    const t0 = performance.now();
    this.ctx.storage.transactionSync(() => {
      for (let i = 0; i < n; i++) {
        this.sql.exec(
          `INSERT INTO ledger (idem_key, kind, amount, batch_id, item_id, note, balance_after, reserved_after, created_at)
           VALUES (?, 'consume', 2, ?, ?, 'item completed', 0, 0, ?)`,
          `${prefix}:${i}`,
          prefix,
          String(i),
          Date.now(),
        );
      }
    });
    return { ms: performance.now() - t0 };
  }

  databaseSize(): number {
    return this.sql.databaseSize;
  }
}
