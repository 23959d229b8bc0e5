/**
 * The shape every bench part reports: rows of one table, each figure beside the baseline
 * it was measured against in the same run, and their ratio. bench/run.mjs merges the
 * in-workerd rows (from vitest's JSON report) with bench/http.mjs's rows into one table.
 */
export interface BenchRow {
  /** Which hot path: "cancel", "throughput", "storm", "create", "account", "extract", "http", "results". */
  section: string;
  what: string;
  value: number;
  unit: string;
  /** What the figure is compared with, measured in the same run. */
  baseline: string;
  baselineValue: number;
  /** value / baselineValue. */
  ratio: number;
  /** How to read the ratio, or the goal it is held to. */
  note?: string;
}

export interface BenchResult {
  rows: BenchRow[];
  /** Raw samples and counts behind the rows, kept in the JSON for later comparison. */
  details?: Record<string, unknown>;
}

/** A row; `ratio` defaults to value / baselineValue (pass the median of paired ratios when there is one). */
export function row(r: Omit<BenchRow, "ratio"> & { ratio?: number }): BenchRow {
  return { ...r, ratio: r.ratio ?? r.value / r.baselineValue };
}
