/**
 * One object in all (named "registry"): the list of account ids, so an operator can see
 * across accounts (GET /admin/stats). It holds ids only, never balances: stats ask each
 * account object, which stays the one source of truth for its own numbers.
 *
 * The admin route registers an account before opening it (an account object cannot
 * await, so it cannot report itself). Registering is idempotent; an id registered for an
 * account that then failed to open is harmless: its stats are empty.
 */
import { DurableObject } from "cloudflare:workers";
import { all, first, migrate, tableExists } from "../durable/sql";
import type { Env } from "../env";
import { REGISTRY_MIGRATIONS } from "./schema";

export const REGISTRY_NAME = "registry";

export class RegistryObject extends DurableObject<Env> {
  private readonly sql = this.ctx.storage.sql;

  /** Adds the account if it is not listed yet. */
  register(accountId: string): void {
    migrate(this.sql, REGISTRY_MIGRATIONS);
    this.sql.exec(
      "INSERT INTO accounts (account_id, registered_at) VALUES (?, ?) ON CONFLICT (account_id) DO NOTHING",
      accountId,
      Date.now(),
    );
  }

  /** Drops an account from the list (for account closure). */
  unregister(accountId: string): void {
    if (tableExists(this.sql, "accounts")) this.sql.exec("DELETE FROM accounts WHERE account_id = ?", accountId);
  }

  /** Accounts in registration order, after `cursor` (the previous page's nextCursor). */
  list(cursor: number | null, limit: number): { accountIds: string[]; nextCursor: number | null; total: number } {
    if (!tableExists(this.sql, "accounts")) return { accountIds: [], nextCursor: null, total: 0 };
    const rows = all<{ seq: number; account_id: string }>(
      this.sql,
      "SELECT seq, account_id FROM accounts WHERE seq > ? ORDER BY seq LIMIT ?",
      cursor ?? 0,
      limit + 1,
    );
    const page = rows.slice(0, limit);
    const total = first<{ n: number }>(this.sql, "SELECT count(*) AS n FROM accounts")!.n;
    return {
      accountIds: page.map((r) => r.account_id),
      nextCursor: rows.length > limit ? page[page.length - 1]!.seq : null,
      total,
    };
  }

  /** For /healthz: answers without touching storage. */
  ping(): "pong" {
    return "pong";
  }
}
