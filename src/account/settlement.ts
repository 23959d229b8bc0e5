import { releaseFromBatch, type SettlementState } from "../domain/settlement";
import { first } from "../durable/sql";
import { appendEntry, inLedger, readBalances, writeBalances } from "./ledger";
import { type UsageDelta, UsageTally } from "./usage";

/**
 * The settlements of one batch's events applied in one transaction of the account object
 * (an applyBatchEvents call, or a stale hold the alarm resolves). The account's balances
 * and the batch's reserved credits are read on first use, kept here while the events apply
 * in order, and written once by flush(); each movement still appends its own ledger row,
 * carrying the running figures after it. A refused settlement throws, which
 * rolls back the whole transaction (this object is dropped with it).
 *
 * While one is open, nothing else may read or write `balances` or the batch's `reserved`
 * without a flush() first (forget does); removing the batch's row calls batchRemoved().
 */
export class Settlement {
  #state: SettlementState | undefined;
  #balancesDirty = false;
  #reservedDirty = false;
  readonly #usage = new UsageTally();

  constructor(
    private readonly sql: SqlStorage,
    readonly batchId: string,
  ) {}

  /**
   * Releases `amount` of the batch's credits and appends the ledger row. Returns false when
   * the key is already in the ledger (a duplicate changes nothing), with `onDuplicate` "skip";
   * with "refuse", a taken key is an error. A refused release throws, unless it is a duplicate.
   *
   * One statement per movement: the INSERT, whose UNIQUE idem_key finds duplicates. SQLite
   * backs out only the failed statement (the transaction goes on, no `seq` is used up), and
   * only then is the key looked up. Not ON CONFLICT DO NOTHING (it uses up a `seq`, leaving
   * a gap in the ledger's ids), nor INSERT … SELECT … WHERE NOT EXISTS or RETURNING (each
   * makes the insert 2-3 times slower).
   */
  release(
    kind: "consume" | "refund",
    amount: number,
    ref: { key: string; itemId: string | null; note: string },
    onDuplicate: "skip" | "refuse",
    /** Items that reached a state with this movement, and their fetch time (the day's usage). */
    usage: UsageDelta = {},
  ): boolean {
    const result = releaseFromBatch(this.load(), kind, amount, { batchId: this.batchId, key: ref.key });
    if (!result.ok) {
      // A duplicate is skipped before any check (it may come after the batch released everything).
      if (onDuplicate === "skip" && inLedger(this.sql, ref.key)) return false;
      throw new Error(result.message);
    }
    const b = result.next.balances;
    const at = Date.now();
    try {
      appendEntry(
        this.sql,
        { key: ref.key, kind, amount, batchId: this.batchId, itemId: ref.itemId, note: ref.note },
        b,
        at,
      );
    } catch (err) {
      if (onDuplicate === "skip" && inLedger(this.sql, ref.key)) return false;
      throw err;
    }
    this.#usage.add(at, { ...usage, [kind === "consume" ? "charged" : "refunded"]: amount });
    this.#state = result.next;
    this.#balancesDirty = true;
    this.#reservedDirty = true;
    return true;
  }

  /** The batch's index row was deleted: it holds nothing from now on, and there is no row to write. */
  batchRemoved(): void {
    if (this.#state) this.#state = { ...this.#state, batchReserved: null };
    this.#reservedDirty = false;
  }

  /** Writes what changed since the last flush (the cached figures stay valid). */
  flush(): void {
    this.#usage.flush(this.sql);
    const state = this.#state;
    if (!state) return;
    if (this.#balancesDirty) writeBalances(this.sql, state.balances);
    if (this.#reservedDirty && state.batchReserved !== null) {
      this.sql.exec("UPDATE batches SET reserved = ? WHERE batch_id = ?", state.batchReserved, this.batchId);
    }
    this.#balancesDirty = false;
    this.#reservedDirty = false;
  }

  private load(): SettlementState {
    if (!this.#state) {
      const balances = readBalances(this.sql);
      const row = first<{ reserved: number }>(
        this.sql,
        "SELECT reserved FROM batches WHERE batch_id = ?",
        this.batchId,
      );
      this.#state = { balances, batchReserved: row?.reserved ?? null };
    }
    return this.#state;
  }
}
