/**
 * Credit holds, table `holds`: credits the account took for a batch (its creation, or a
 * retry of failed items) before the batch object applied them. A hold is `pending` until
 * the batch object says `confirm` (it applied them: `confirmed`) or `void` (it never will:
 * `void`, credits refunded); past its deadline the alarm asks the batch object. A void of a
 * key never reserved leaves a tombstone, so a reservation arriving late is refused.
 * States and their counterpart in the batch object: src/domain/holds.ts. Call the writes
 * inside the account object's transaction.
 */
import type { Failure, Ok } from "../domain/errors";
import { ACCOUNT_HOLD, type AccountHoldState, type HoldResolution } from "../domain/holds";
import { all, first } from "../durable/sql";
import type { Env } from "../env";
import { move } from "./ledger";
import { log } from "../lib/log";

/** A batch object that did not answer about a stale hold is asked again after this long. */
const HOLD_RECHECK_MS = 10_000;

/** What the credits are for; a `tombstone` holds none (a void that came before its reserve). */
export type HoldPurpose = "create" | "retry" | "tombstone";

export interface Hold {
  key: string;
  batchId: string;
  purpose: HoldPurpose;
  amount: number;
  state: AccountHoldState;
  deadline: number | null;
}

const HOLD_COLUMNS = "key, batch_id AS batchId, purpose, amount, state, deadline";

export function findHold(sql: SqlStorage, key: string): Hold | undefined {
  return first<Hold>(sql, `SELECT ${HOLD_COLUMNS} FROM holds WHERE key = ?`, key);
}

/** Reserves the credits (a ledger row) under a pending hold that the alarm checks at `deadline`. */
export function takeHold(
  sql: SqlStorage,
  hold: { key: string; batchId: string; purpose: "create" | "retry"; amount: number },
  deadline: number,
  now: number,
): Ok<object> | Failure {
  const moved = move(sql, "reserve", hold.amount, {
    key: hold.key,
    batchId: hold.batchId,
    note: hold.purpose === "create" ? "batch created" : "failed items retried",
  });
  if (!moved.ok) return moved;
  sql.exec(
    "INSERT INTO holds (key, batch_id, purpose, amount, state, deadline, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    hold.key,
    hold.batchId,
    hold.purpose,
    hold.amount,
    ACCOUNT_HOLD.pending,
    deadline,
    now,
  );
  return { ok: true };
}

/** The batch applied the hold: the hold as it was, or null when it was confirmed already. A void or unknown hold is an error. */
export function confirmHold(sql: SqlStorage, key: string): Hold | null {
  const hold = findHold(sql, key);
  if (!hold) throw new Error(`confirm of unknown hold ${key}`);
  if (hold.state === ACCOUNT_HOLD.confirmed) return null;
  if (hold.state === ACCOUNT_HOLD.void) throw new Error(`confirm of void hold ${key}`);
  sql.exec("UPDATE holds SET state = ?, deadline = NULL WHERE key = ?", ACCOUNT_HOLD.confirmed, key);
  return hold;
}

/**
 * The batch will never apply the hold: what it held and what for (the caller gives the
 * credits back), or null when it was void already. A confirmed hold is an error. An unknown
 * key is remembered as a void tombstone holding nothing (its reserve has not arrived, and now never may).
 */
export function voidHold(
  sql: SqlStorage,
  key: string,
  batchId: string,
  now: number,
): { amount: number; purpose: HoldPurpose } | null {
  const hold = findHold(sql, key);
  if (!hold) {
    // A tombstone holds nothing: bound as a typed value, like the state.
    const purpose: HoldPurpose = "tombstone";
    sql.exec(
      "INSERT INTO holds (key, batch_id, purpose, amount, state, created_at) VALUES (?, ?, ?, 0, ?, ?)",
      key,
      batchId,
      purpose,
      ACCOUNT_HOLD.void,
      now,
    );
    return { amount: 0, purpose };
  }
  if (hold.state === ACCOUNT_HOLD.void) return null;
  if (hold.state === ACCOUNT_HOLD.confirmed) throw new Error(`void of confirmed hold ${key}`);
  sql.exec("UPDATE holds SET state = ?, deadline = NULL WHERE key = ?", ACCOUNT_HOLD.void, key);
  return { amount: hold.amount, purpose: hold.purpose };
}

export function hasPendingHold(sql: SqlStorage, batchId: string): boolean {
  return (
    first(sql, "SELECT 1 AS x FROM holds WHERE batch_id = ? AND state = ?", batchId, ACCOUNT_HOLD.pending) !== undefined
  );
}

/** Pending holds past their deadline, at most `limit`: the alarm asks their batch objects. */
export function staleHolds(sql: SqlStorage, now: number, limit: number): Hold[] {
  return all<Hold>(
    sql,
    `SELECT ${HOLD_COLUMNS} FROM holds WHERE state = ? AND deadline <= ? LIMIT ?`,
    ACCOUNT_HOLD.pending,
    now,
    limit,
  );
}

/**
 * Asks the batch object what became of a stale hold: applied or abandoned (it abandons a
 * hold it had not applied, so the answer is final). Null when it did not answer: the hold
 * is asked about again later, unless it was settled meanwhile.
 */
export async function askBatchAbout(
  sql: SqlStorage,
  batches: Env["BATCH"],
  hold: Hold,
): Promise<HoldResolution | null> {
  try {
    return await batches.getByName(hold.batchId).resolveHold(hold.key);
  } catch (err) {
    log("warn", "hold resolution failed", { key: hold.key, error: String(err) });
    sql.exec(
      "UPDATE holds SET deadline = ? WHERE key = ? AND state = ?",
      Date.now() + HOLD_RECHECK_MS,
      hold.key,
      ACCOUNT_HOLD.pending,
    );
    return null;
  }
}

/** The first deadline of a pending hold, or null with none. */
export function nextHoldDeadline(sql: SqlStorage): number | null {
  return (
    first<{ t: number | null }>(sql, "SELECT min(deadline) AS t FROM holds WHERE state = ?", ACCOUNT_HOLD.pending)?.t ??
    null
  );
}

export function deleteHoldsOf(sql: SqlStorage, batchId: string): void {
  sql.exec("DELETE FROM holds WHERE batch_id = ?", batchId);
}

/** Void holds made at or before `before` of batches that were never created (no index row). */
export function purgeAbandonedHolds(sql: SqlStorage, before: number): void {
  sql.exec(
    "DELETE FROM holds WHERE state = ? AND created_at <= ? AND batch_id NOT IN (SELECT batch_id FROM batches)",
    ACCOUNT_HOLD.void,
    before,
  );
}
