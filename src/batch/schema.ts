/** Batch object tables. Append a migration; never edit one that has shipped. */
export const BATCH_MIGRATIONS = [
  `
  -- One row: the batch, with item counts by state kept current on every transition.
  CREATE TABLE batch (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    batch_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    status TEXT NOT NULL,
    output TEXT NOT NULL,
    selectors TEXT,
    max_concurrency INTEGER NOT NULL,
    credits_per_item INTEGER NOT NULL,
    total INTEGER NOT NULL,
    pending INTEGER NOT NULL, running INTEGER NOT NULL, completed INTEGER NOT NULL,
    failed INTEGER NOT NULL, cancelled INTEGER NOT NULL,
    credits_reserved INTEGER NOT NULL, credits_used INTEGER NOT NULL, credits_refunded INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    started_at INTEGER, cancelled_at INTEGER, finished_at INTEGER,
    version INTEGER NOT NULL,
    outbox_failures INTEGER NOT NULL DEFAULT 0
  );
  CREATE TABLE items (
    idx INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    url TEXT NOT NULL,
    status TEXT NOT NULL,
    round INTEGER NOT NULL DEFAULT 1,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_attempt INTEGER,
    lease_expires_at INTEGER,
    result TEXT,
    error TEXT,
    credits_used INTEGER NOT NULL DEFAULT 0,
    started_at INTEGER,
    finished_at INTEGER
  );
  CREATE INDEX items_status ON items (status, idx);
  CREATE INDEX items_lease ON items (lease_expires_at) WHERE status = 'running';
  -- Effects on the account object, written with the state change, sent until acknowledged.
  CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    event TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  -- Credit holds this batch applied (or refused to apply); see resolveHold.
  CREATE TABLE holds (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    amount INTEGER NOT NULL DEFAULT 0,
    item_idxs TEXT,
    created_at INTEGER NOT NULL
  );
  `,
  `
  -- v2: dispatch through the queue, results in R2.
  -- queued = pending items whose queue message is out but not started yet (they hold a slot).
  ALTER TABLE batch ADD COLUMN queued INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE items ADD COLUMN dispatch_token INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE items ADD COLUMN dispatched_at INTEGER;
  ALTER TABLE items ADD COLUMN not_before INTEGER;
  ALTER TABLE items ADD COLUMN result_key TEXT;
  ALTER TABLE items ADD COLUMN status_code INTEGER;
  ALTER TABLE items ADD COLUMN final_url TEXT;
  ALTER TABLE items ADD COLUMN duration_ms INTEGER;
  CREATE INDEX items_undispatched ON items (idx) WHERE status = 'pending' AND dispatched_at IS NULL;
  CREATE INDEX items_dispatched ON items (dispatched_at) WHERE status = 'pending' AND dispatched_at IS NOT NULL;
  -- Queue messages, written with the dispatch decision, sent until the queue accepts them.
  CREATE TABLE sends (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    event TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  `,
  `
  -- v3: the account-wide cap. The batch dispatches only into slots its account granted.
  ALTER TABLE batch ADD COLUMN slots_granted INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE batch ADD COLUMN slots_version INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE batch ADD COLUMN slots_retry_at INTEGER;
  `,
  `
  -- v4: retention (src/batch/retention.ts). Set when removal began: the account has been
  -- told to forget the batch, reads answer BATCH_EXPIRED and nothing may change it again.
  ALTER TABLE batch ADD COLUMN expiring_at INTEGER;
  `,
  `
  -- v5: the batch's webhook (events go to the account object, which signs and delivers them).
  ALTER TABLE batch ADD COLUMN webhook_url TEXT;
  `,
  `
  -- v6: outboxes are looked up by kind (status snapshots replace each other) on every transition.
  CREATE INDEX outbox_kind ON outbox (kind);
  CREATE INDEX sends_kind ON sends (kind);
  `,
  `
  -- v7: no (status, idx) index. Every status change of every item rewrote it, and a cancel
  -- kept it current for every pending item. Pending items are found through the partial
  -- indexes of v2 (undispatched, dispatched), running ones through items_lease, failed
  -- ones (retry) through their own.
  DROP INDEX IF EXISTS items_status;
  CREATE INDEX items_failed ON items (idx) WHERE status = 'failed';
  `,
  `
  -- v8: copies of API keys' validity lent by the account, so reads check keys here
  -- (src/batch/key-copies.ts). An ended key keeps its row as a marker: no hash, ended set.
  CREATE TABLE IF NOT EXISTS key_copies (
    key_id TEXT PRIMARY KEY,
    key_hash TEXT,
    expires_at INTEGER,
    ended TEXT,
    stored_at INTEGER NOT NULL
  );
  `,
  `
  -- v9: the caller's own id and metadata for each item (src/domain/item-inputs.ts), echoed on
  -- every read. Uniqueness of custom_id is checked before the insert, so no index.
  ALTER TABLE items ADD COLUMN custom_id TEXT;
  ALTER TABLE items ADD COLUMN metadata TEXT;
  `,
  `
  -- v10: create options beyond output and selectors (src/batch/options.ts). ai: JSON
  -- {prompt, schema}. cookies_sealed: the batch's cookies, sealed (src/lib/sealed-cookies.ts),
  -- set to NULL when the batch ends; had_cookies remembers there were some, so that a retry
  -- after the end is refused rather than run without them.
  ALTER TABLE batch ADD COLUMN main_content_only INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE batch ADD COLUMN ai TEXT;
  ALTER TABLE batch ADD COLUMN cookies_sealed TEXT;
  ALTER TABLE batch ADD COLUMN had_cookies INTEGER NOT NULL DEFAULT 0;
  `,
  `
  -- v11: how pages are scraped (src/domain/scrape-options.ts), as JSON; NULL: the defaults.
  ALTER TABLE batch ADD COLUMN scrape_options TEXT;
  `,
] as const;
