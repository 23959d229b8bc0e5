/**
 * The account's own row, table `account`: its id, name, when it was opened and when it was
 * closed (migration v3; a closed account keeps its books and accepts nothing new). Its
 * webhook secret columns belong to src/webhooks/secrets.ts. No row: no account.
 */
import { first, tableExists } from "../durable/sql";

export interface AccountRow {
  id: string;
  name: string | null;
  createdAt: number;
}

/** Reads nothing but the schema when the object was never opened (it stores nothing then). */
export function accountExists(sql: SqlStorage): boolean {
  return tableExists(sql, "account") && first(sql, "SELECT 1 AS x FROM account") !== undefined;
}

export function insertAccount(sql: SqlStorage, accountId: string, name: string | null, now: number): void {
  sql.exec("INSERT INTO account (id, name, created_at) VALUES (?, ?, ?)", accountId, name, now);
}

export function accountRow(sql: SqlStorage): AccountRow {
  return first<AccountRow>(sql, "SELECT id, name, created_at AS createdAt FROM account")!;
}

/** When the account was closed, or null while it is open (needs migration v3). */
export function closedAt(sql: SqlStorage): number | null {
  return first<{ closed_at: number | null }>(sql, "SELECT closed_at FROM account")!.closed_at;
}

/** Closes the account (once: closing again keeps the first time); when it was closed. */
export function markClosed(sql: SqlStorage, now: number): number {
  sql.exec("UPDATE account SET closed_at = coalesce(closed_at, ?)", now);
  return closedAt(sql)!;
}
