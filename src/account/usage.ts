/**
 * The account's usage by UTC day (table `usage_daily`), kept with the ledger: every ledger
 * write that is usage (a reserve, a consume, a refund) adds to its day's row in the same
 * transaction, so GET /api/usage-stats reads at most 49 rows however long the ledger is.
 * A Settlement adds up its movements in a UsageTally and writes each day once, on flush.
 */
import { type UsageDay, dayOf } from "../domain/usage-range";
import { all } from "../durable/sql";

/** What a ledger movement adds to its day (counts of items that reached a state, fetch times). */
export type UsageDelta = Partial<Omit<UsageDay, "day">>;

const COLUMNS = {
  reserved: "reserved",
  charged: "charged",
  refunded: "refunded",
  completed: "completed",
  failed: "failed",
  cancelled: "cancelled",
  durationMs: "duration_ms",
  timed: "timed",
} as const satisfies Record<keyof UsageDelta, string>;

const FIELDS = Object.keys(COLUMNS) as (keyof UsageDelta)[];

/**
 * v10 of the account's migrations: the table, filled once from the ledger so far (items by
 * the notes their rows carry; fetch times were not in the ledger, so old days have none).
 */
export const USAGE_MIGRATION = `
  -- v12: usage by UTC day (src/account/usage.ts), written with each ledger row.
  CREATE TABLE usage_daily (
    day INTEGER PRIMARY KEY,
    reserved INTEGER NOT NULL DEFAULT 0, charged INTEGER NOT NULL DEFAULT 0, refunded INTEGER NOT NULL DEFAULT 0,
    completed INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0, cancelled INTEGER NOT NULL DEFAULT 0,
    duration_ms INTEGER NOT NULL DEFAULT 0, timed INTEGER NOT NULL DEFAULT 0
  );
  INSERT INTO usage_daily (day, reserved, charged, refunded, completed, failed, cancelled)
  SELECT created_at / 86400000,
    SUM(CASE WHEN kind = 'reserve' THEN amount ELSE 0 END),
    SUM(CASE WHEN kind = 'consume' THEN amount ELSE 0 END),
    SUM(CASE WHEN kind = 'refund' THEN amount ELSE 0 END),
    SUM(CASE WHEN kind = 'consume' AND note = 'item completed' THEN 1 ELSE 0 END),
    SUM(CASE WHEN (kind = 'consume' AND note = 'item failed, charged') OR (kind = 'refund' AND item_id IS NOT NULL)
        THEN 1 ELSE 0 END),
    SUM(CASE WHEN kind = 'refund' AND note LIKE 'batch cancelled: %' THEN CAST(substr(note, 18) AS INTEGER) ELSE 0 END)
  FROM ledger WHERE kind != 'grant' GROUP BY created_at / 86400000;
`;

/** Adds `delta` to the day of `at` (one upsert). */
export function addUsage(sql: SqlStorage, at: number, delta: UsageDelta): void {
  const fields = FIELDS.filter((f) => (delta[f] ?? 0) !== 0);
  if (fields.length === 0) return;
  const cols = fields.map((f) => COLUMNS[f]);
  sql.exec(
    `INSERT INTO usage_daily (day, ${cols.join(", ")}) VALUES (?${", ?".repeat(cols.length)})
     ON CONFLICT (day) DO UPDATE SET ${cols.map((c) => `${c} = ${c} + excluded.${c}`).join(", ")}`,
    dayOf(at),
    ...fields.map((f) => delta[f]!),
  );
}

/** Deltas added up by day in memory, written by flush() (one upsert per day touched). */
export class UsageTally {
  readonly #days = new Map<number, UsageDelta>();

  add(at: number, delta: UsageDelta): void {
    const day = dayOf(at);
    const sum = this.#days.get(day) ?? {};
    for (const f of FIELDS) if (delta[f]) sum[f] = (sum[f] ?? 0) + delta[f]!;
    this.#days.set(day, sum);
  }

  flush(sql: SqlStorage): void {
    for (const [day, delta] of this.#days) addUsage(sql, day * 86_400_000, delta);
    this.#days.clear();
  }
}

/** The days from `fromDay` to `toDay`, through the primary key. */
export function usageDays(sql: SqlStorage, fromDay: number, toDay: number): UsageDay[] {
  return all<UsageDay>(
    sql,
    `SELECT day, reserved, charged, refunded, completed, failed, cancelled, duration_ms AS durationMs, timed
     FROM usage_daily WHERE day BETWEEN ? AND ? ORDER BY day`,
    fromDay,
    toDay,
  );
}
