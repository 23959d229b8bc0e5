/**
 * One batch's credit movements, read from the ledger (the money history; never deleted):
 * the totals by kind and the rows themselves, a page at a time, oldest first. What the
 * account still holds for the batch is its index row's `reserved`, kept by the holds and
 * settlements independently of these sums; reserved = charged + refunded + held is what
 * the books promise, and the receipt shows both sides so a reader can check it.
 */
import { all, first } from "../durable/sql";
import type { LedgerEntry } from "./ledger";

export interface BatchReceiptTotals {
  /** Credits reserved for the batch: at create, and by each retry (released ones included). */
  reserved: number;
  /** Consumed: completed items, and failures charged at an extraction limit. */
  charged: number;
  /** Given back: failed and cancelled items, and reservations released unused. */
  refunded: number;
  /** Still held for items not finished (the account's hold), or null once the batch is forgotten. */
  held: number | null;
}

export type ReceiptEntry = Omit<LedgerEntry, "batchId" | "balanceAfter" | "reservedAfter">;

export interface BatchReceiptPage {
  totals: BatchReceiptTotals;
  entries: ReceiptEntry[];
  /** The id of the last entry of this page, to read the next; null after the last. */
  nextCursor: number | null;
}

/** `cursor`: the id of the last entry of the previous page (entries come oldest first). */
export function batchReceipt(sql: SqlStorage, batchId: string, cursor: number | null, limit: number): BatchReceiptPage {
  const sums = all<{ kind: string; total: number }>(
    sql,
    "SELECT kind, sum(amount) AS total FROM ledger WHERE batch_id = ? GROUP BY kind",
    batchId,
  );
  const sum = (kind: string) => sums.find((s) => s.kind === kind)?.total ?? 0;
  const held = first<{ reserved: number }>(sql, "SELECT reserved FROM batches WHERE batch_id = ?", batchId);
  const rows = all<ReceiptEntry>(
    sql,
    `SELECT seq AS id, kind, amount, item_id AS itemId, note, idem_key AS idempotencyKey, created_at AS createdAt
     FROM ledger WHERE batch_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
    batchId,
    cursor ?? 0,
    limit + 1,
  );
  const entries = rows.slice(0, limit);
  return {
    totals: {
      reserved: sum("reserve"),
      charged: sum("consume"),
      refunded: sum("refund"),
      held: held?.reserved ?? null,
    },
    entries,
    nextCursor: rows.length > limit ? entries[entries.length - 1]!.id : null,
  };
}
