import { USAGE_MIGRATION } from "./usage";
import { WEBHOOK_MIGRATION } from "../webhooks/deliveries";
import { WEBHOOK_SECRET_ROTATION_MIGRATION } from "../webhooks/secrets";

/** Account object tables. Append a migration; never edit one that has shipped. */
export const ACCOUNT_MIGRATIONS = [
  `
  CREATE TABLE account (
    id TEXT PRIMARY KEY,
    name TEXT,
    created_at INTEGER NOT NULL
  );
  -- One row. Invariant: granted = balance + reserved + used.
  CREATE TABLE balances (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    granted INTEGER NOT NULL, balance INTEGER NOT NULL, reserved INTEGER NOT NULL,
    used INTEGER NOT NULL, refunded INTEGER NOT NULL
  );
  CREATE TABLE api_keys (
    key_id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER
  );
  -- Append-only. Every credit movement is one row with a unique idempotency key.
  CREATE TABLE ledger (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    idem_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    amount INTEGER NOT NULL,
    batch_id TEXT,
    item_id TEXT,
    note TEXT,
    balance_after INTEGER NOT NULL,
    reserved_after INTEGER NOT NULL,
    created_at INTEGER NOT NULL
  );
  -- Credits held for a batch: pending until the batch object confirms it, or void.
  CREATE TABLE holds (
    key TEXT PRIMARY KEY,
    batch_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    amount INTEGER NOT NULL,
    state TEXT NOT NULL,
    deadline INTEGER,
    created_at INTEGER NOT NULL
  );
  CREATE INDEX holds_pending ON holds (state, deadline);
  -- The account's batches, kept current by the batch objects' outboxes.
  CREATE TABLE batches (
    batch_id TEXT PRIMARY KEY,
    visible INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    total INTEGER NOT NULL,
    completed INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    cancelled INTEGER NOT NULL DEFAULT 0,
    reserved INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    finished_at INTEGER
  );
  CREATE INDEX batches_recent ON batches (visible, created_at DESC, batch_id);
  -- Idempotency-Key records (24 h).
  CREATE TABLE idempotency (
    key TEXT PRIMARY KEY,
    request_hash TEXT NOT NULL,
    batch_id TEXT,
    created_at INTEGER NOT NULL
  );
  CREATE INDEX idempotency_age ON idempotency (created_at);
  `,
  `
  -- v2: the account-wide concurrency cap. Each batch holds some of the account's slots;
  -- claims are absolute and versioned, so a repeated or late claim changes nothing.
  CREATE TABLE slots (
    batch_id TEXT PRIMARY KEY,
    granted INTEGER NOT NULL,
    wanted INTEGER NOT NULL,
    version INTEGER NOT NULL
  );
  `,
  `
  -- v3: closing an account. A closed account keeps its ledger forever and accepts nothing new.
  ALTER TABLE account ADD COLUMN closed_at INTEGER;
  `,
  WEBHOOK_MIGRATION,
  `
  -- v5: a slot claim reads the batches that hold slots and those that wait for some, not
  -- every batch the account ever had (finished batches keep a row with granted = 0).
  CREATE INDEX slots_held ON slots (batch_id, granted) WHERE granted > 0;
  CREATE INDEX slots_waiting ON slots (version) WHERE granted < wanted;
  `,
  `
  -- v6: where each key has opened live views (WebSockets), so revoking a key, or closing
  -- the account, closes them at once. One row per key and batch; gone with the batch.
  CREATE TABLE live_views (
    key_id TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    opened_at INTEGER NOT NULL,
    PRIMARY KEY (key_id, batch_id)
  );
  CREATE INDEX live_views_batch ON live_views (batch_id);
  `,
  WEBHOOK_SECRET_ROTATION_MIGRATION,
  `
  -- v8: a view of a key that ended (revoked, expired) is marked for closing; close_at is
  -- when the next attempt is due, should its batch not answer (src/account/live-views.ts).
  ALTER TABLE live_views ADD COLUMN close_at INTEGER;
  CREATE INDEX live_views_closing ON live_views (close_at) WHERE close_at IS NOT NULL;
  `,
  `
  -- v9: which batch objects hold a copy of which API key's validity (src/account/key-copies.ts),
  -- so that ending the key reaches them. drop_at: null while the key is valid, else when the
  -- next push of its end is due. Gone with the batch, or once its holder confirmed the drop.
  CREATE TABLE IF NOT EXISTS key_copies (
    key_id TEXT NOT NULL,
    batch_id TEXT NOT NULL,
    lent_at INTEGER NOT NULL,
    drop_at INTEGER,
    PRIMARY KEY (key_id, batch_id)
  );
  CREATE INDEX IF NOT EXISTS key_copies_batch ON key_copies (batch_id);
  CREATE INDEX IF NOT EXISTS key_copies_dropping ON key_copies (drop_at) WHERE drop_at IS NOT NULL;
  `,
  `
  -- v10: a batch's receipt reads its ledger rows (src/account/batch-receipt.ts): by batch, in order.
  CREATE INDEX ledger_batch ON ledger (batch_id, seq) WHERE batch_id IS NOT NULL;
  `,
  `
  -- v11: the batch's output format, for listings (Spidra's outputFormat). NULL for batches
  -- indexed before it: the listing asks their batch objects (src/http/routes/batches.ts).
  ALTER TABLE batches ADD COLUMN output TEXT;
  `,
  USAGE_MIGRATION,
] as const;
