/** Registry object tables. Append a migration; never edit one that has shipped. */
export const REGISTRY_MIGRATIONS = [
  `
  -- Every account ever opened, in order; seq is the stats cursor.
  CREATE TABLE accounts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id TEXT NOT NULL UNIQUE,
    registered_at INTEGER NOT NULL
  );
  `,
] as const;
