/** Defaults and caps shared by the HTTP layer, the batch object and the executor. */
export const LIMITS = {
  /** Default for MAX_URLS_PER_BATCH. */
  maxUrlsPerBatch: 1000,
  maxUrlLength: 2048,
  /** Default for MAX_ACTIVE_BATCHES: batches one account may have pending or running at once. */
  maxActiveBatches: 100,
  maxSelectors: 20,
  defaultMaxConcurrency: 5,
  maxConcurrency: 20,
  /** Attempts an item gets before a transient failure becomes final. */
  maxAttempts: 3,
  /** How long a started item may run before the batch object takes it back. */
  leaseMs: 120_000,
  /** Largest result kept inline on the item row. */
  maxInlineResultBytes: 256 * 1024,
  itemsPageDefault: 50,
  itemsPageMax: 100,
  batchesPageDefault: 20,
  batchesPageMax: 50,
  ledgerPageDefault: 50,
  ledgerPageMax: 100,
} as const;
