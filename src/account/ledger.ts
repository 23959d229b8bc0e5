/**
 * The account's books: table `balances` (one row; granted = balance + reserved + used) and
 * table `ledger`, append-only, one row per credit movement under a unique idempotency key,
 * carrying the running figures after it. Grants and reservations move credits here
 * (`move`); a batch's settlements go through src/account/settlement.ts, which writes the
 * same two tables once per step. Call the writes inside the account object's transaction.
 */
import { applyMovement, type Balances, type MovementKind } from "../domain/credits";
import { fail, type Failure, type Ok } from "../domain/errors";
import { all, first } from "../durable/sql";
import { addUsage } from "./usage";

export interface LedgerEntry {
  id: number;
  kind: MovementKind;
  amount: number;
  batchId: string | null;
  itemId: string | null;
  note: string | null;
  idempotencyKey: string;
  balanceAfter: number;
  reservedAfter: number;
  createdAt: number;
}

/** A new account's books: all zero. */
export function openBooks(sql: SqlStorage): void {
  sql.exec("INSERT INTO balances (id, granted, balance, reserved, used, refunded) VALUES (1, 0, 0, 0, 0, 0)");
}

export function readBalances(sql: SqlStorage): Balances {
  return first<Balances>(sql, "SELECT granted, balance, reserved, used, refunded FROM balances")!;
}

export function writeBalances(sql: SqlStorage, b: Balances): void {
  sql.exec(
    "UPDATE balances SET granted = ?, balance = ?, reserved = ?, used = ?, refunded = ?",
    b.granted,
    b.balance,
    b.reserved,
    b.used,
    b.refunded,
  );
}

/** The amount moved under this ledger key, or undefined when the key is new. */
export function ledgerAmount(sql: SqlStorage, key: string): number | undefined {
  return first<{ amount: number }>(sql, "SELECT amount FROM ledger WHERE idem_key = ?", key)?.amount;
}

export function inLedger(sql: SqlStorage, key: string): boolean {
  return first(sql, "SELECT 1 AS x FROM ledger WHERE idem_key = ?", key) !== undefined;
}

/**
 * One credit movement: new balances and the ledger row, written together. For grants and
 * reservations; a batch's settlements (consume, refund) go through a Settlement instead.
 */
export function move(
  sql: SqlStorage,
  kind: MovementKind,
  amount: number,
  ref: { key: string; batchId?: string | null; itemId?: string | null; note: string },
): Ok<{ balances: Balances }> | Failure {
  const result = applyMovement(readBalances(sql), kind, amount);
  if (!result.ok) {
    return fail(result.code === "INSUFFICIENT_CREDITS" ? "INSUFFICIENT_CREDITS" : "VALIDATION_ERROR", result.message);
  }
  const b = result.next;
  const at = Date.now();
  writeBalances(sql, b);
  appendEntry(
    sql,
    { key: ref.key, kind, amount, batchId: ref.batchId ?? null, itemId: ref.itemId ?? null, note: ref.note },
    b,
    at,
  );
  // Grants are not usage; reservations are (GET /api/usage-stats).
  if (kind === "reserve") addUsage(sql, at, { reserved: amount });
  return { ok: true, balances: b };
}

/** The ledger row of one movement, with the figures after it. Throws when its key is taken (UNIQUE idem_key). */
export function appendEntry(
  sql: SqlStorage,
  row: { key: string; kind: MovementKind; amount: number; batchId: string | null; itemId: string | null; note: string },
  after: Balances,
  at: number = Date.now(),
): void {
  sql.exec(
    `INSERT INTO ledger (idem_key, kind, amount, batch_id, item_id, note, balance_after, reserved_after, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    row.key,
    row.kind,
    row.amount,
    row.batchId,
    row.itemId,
    row.note,
    after.balance,
    after.reserved,
    at,
  );
}

/** Newest first; `cursor` is the id of the last entry of the previous page. */
export function ledgerPage(
  sql: SqlStorage,
  cursor: number | null,
  limit: number,
): { entries: LedgerEntry[]; nextCursor: number | null } {
  const rows = all<LedgerEntry>(
    sql,
    `SELECT seq AS id, kind, amount, batch_id AS batchId, item_id AS itemId, note, idem_key AS idempotencyKey,
            balance_after AS balanceAfter, reserved_after AS reservedAfter, created_at AS createdAt
     FROM ledger WHERE seq < ? ORDER BY seq DESC LIMIT ?`,
    cursor ?? Number.MAX_SAFE_INTEGER,
    limit + 1,
  );
  const more = rows.length > limit;
  const entries = rows.slice(0, limit);
  return { entries, nextCursor: more ? entries[entries.length - 1]!.id : null };
}
