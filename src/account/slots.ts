/**
 * The account-wide concurrency cap, table `slots`: how many of the account's slots (items
 * running at once over all its batches) each batch holds, and how many it wants. A claim
 * is absolute and versioned, so a repeated or late claim changes nothing; a batch gets
 * what the others leave free and never less than it held. When a batch gives slots back
 * while another waits, the caller is told (`SlotContext.onFreed`) and its alarm wakes the
 * waiters (`wakeWaitingBatches`).
 * Call the writes inside the account object's transaction.
 */
import { all, first, tableExists } from "../durable/sql";
import type { Env } from "../env";
import { positiveInt } from "../lib/positive-int";
import { log } from "../lib/log";

const DEFAULT_ACCOUNT_CONCURRENCY = 50;
/** Batches woken per alarm when slots free up. */
const NUDGE_BATCHES = 20;

/** What a claim needs from the account object: its cap, and whom to tell when slots came free for a waiting batch. */
export interface SlotContext {
  cap: number;
  onFreed: () => void;
}

export interface SlotUsage {
  cap: number;
  granted: number;
  batches: { batchId: string; granted: number; wanted: number }[];
}

/** The cap: ACCOUNT_MAX_CONCURRENCY, or 50. */
export function slotCap(configured: string | undefined): number {
  return positiveInt(configured, DEFAULT_ACCOUNT_CONCURRENCY);
}

/**
 * The batch's new grant, min(wanted, what the others leave free); an older claim than the
 * last one answers the grant it has. Calls `onFreed` when the batch gave slots back and some batch waits.
 */
export function claimSlots(
  sql: SqlStorage,
  slots: SlotContext,
  batchId: string,
  version: number,
  wanted: number,
): number {
  const row = first<{ granted: number; version: number }>(
    sql,
    "SELECT granted, version FROM slots WHERE batch_id = ?",
    batchId,
  );
  if (row && row.version >= version) return row.granted;
  const others = slotsHeld(sql) - (row?.granted ?? 0);
  const granted = Math.max(0, Math.min(wanted, slots.cap - others));
  sql.exec(
    `INSERT INTO slots (batch_id, granted, wanted, version) VALUES (?, ?, ?, ?)
     ON CONFLICT (batch_id) DO UPDATE SET granted = excluded.granted, wanted = excluded.wanted, version = excluded.version`,
    batchId,
    granted,
    wanted,
    version,
  );
  if (row && granted < row.granted && waitingBatches(sql, 1).length > 0) slots.onFreed();
  return granted;
}

/** The slots the batch holds (0 when it has no row). */
export function slotsGrantedTo(sql: SqlStorage, batchId: string): number {
  return first<{ granted: number }>(sql, "SELECT granted FROM slots WHERE batch_id = ?", batchId)?.granted ?? 0;
}

/** The batch is gone (never created, or removed by retention): its row goes, and the slots it held are free. */
export function dropSlots(sql: SqlStorage, batchId: string): void {
  sql.exec("DELETE FROM slots WHERE batch_id = ?", batchId);
}

/** Slots granted over all batches (through the partial index: only batches that hold some). */
export function slotsHeld(sql: SqlStorage): number {
  return first<{ n: number }>(sql, "SELECT coalesce(sum(granted), 0) AS n FROM slots WHERE granted > 0")!.n;
}

/** Batches that want more than they hold, those that waited longest first (through the partial index). */
export function waitingBatches(sql: SqlStorage, limit: number): string[] {
  return all<{ batch_id: string }>(
    sql,
    "SELECT batch_id FROM slots WHERE granted < wanted ORDER BY version LIMIT ?",
    limit,
  ).map((r) => r.batch_id);
}

/** Slots held and wanted, for the account and each batch that holds or wants any. */
export function slotUsage(sql: SqlStorage, cap: number): SlotUsage {
  if (!tableExists(sql, "slots")) return { cap, granted: 0, batches: [] };
  const batches = all<{ batchId: string; granted: number; wanted: number }>(
    sql,
    "SELECT batch_id AS batchId, granted, wanted FROM slots WHERE granted > 0 OR wanted > 0",
  );
  return { cap, granted: batches.reduce((n, b) => n + b.granted, 0), batches };
}

/**
 * Slots came free: asks batches that wait for some to claim again, those that waited
 * longest first, no more of them than there are free slots (a batch that waits also
 * retries by itself, every 30 s).
 */
export async function wakeWaitingBatches(sql: SqlStorage, batches: Env["BATCH"], cap: number): Promise<void> {
  const free = cap - slotsHeld(sql);
  if (free <= 0) return;
  for (const batchId of waitingBatches(sql, Math.min(free, NUDGE_BATCHES))) {
    try {
      await batches.getByName(batchId).pump();
    } catch (err) {
      log("warn", "could not wake batch", { batchId, error: String(err) });
    }
  }
}
