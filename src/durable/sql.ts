/** Thin helpers over a Durable Object's synchronous SQLite API. */

export type Bind = SqlStorageValue;

export function all<T>(sql: SqlStorage, query: string, ...binds: Bind[]): T[] {
  return sql.exec(query, ...binds).toArray() as T[];
}

export function first<T>(sql: SqlStorage, query: string, ...binds: Bind[]): T | undefined {
  return all<T>(sql, query, ...binds)[0];
}

export function tableExists(sql: SqlStorage, name: string): boolean {
  return first(sql, "SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = ?", name) !== undefined;
}

/**
 * Applies the migrations not applied yet, in order, recording the version in `_schema`.
 * Objects call it on their first write only, so reading an unknown id stores nothing.
 */
export function migrate(sql: SqlStorage, migrations: readonly string[]): void {
  sql.exec("CREATE TABLE IF NOT EXISTS _schema (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)");
  const current = first<{ version: number }>(sql, "SELECT version FROM _schema")?.version ?? 0;
  for (let v = current; v < migrations.length; v++) sql.exec(migrations[v]!);
  if (current < migrations.length) {
    sql.exec(
      "INSERT INTO _schema (id, version) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET version = excluded.version",
      migrations.length,
    );
  }
}
