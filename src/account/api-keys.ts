/**
 * The account's API keys, table `api_keys`: one row per key with only the SHA-256 of the
 * key (src/account/keys.ts makes and parses keys), when it expires and when it was revoked.
 * A revoked key stays (revocation is kept, and a repeated revoke answers the first time).
 * Call the writes inside the account object's transaction.
 */
import { all, first } from "../durable/sql";
import { hashesEqual } from "./keys";

export interface KeySummary {
  keyId: string;
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
}

export function insertKey(
  sql: SqlStorage,
  key: { keyId: string; keyHash: string; expiresAt: number | null },
  createdAt: number,
): void {
  sql.exec(
    "INSERT INTO api_keys (key_id, key_hash, created_at, expires_at) VALUES (?, ?, ?, ?)",
    key.keyId,
    key.keyHash,
    createdAt,
    key.expiresAt,
  );
}

/** True when the key exists, is not revoked or expired, and its hash matches (constant time). */
export function keyMatches(sql: SqlStorage, keyId: string, keyHash: string, now: number): boolean {
  const row = first<{ key_hash: string; expires_at: number | null; revoked_at: number | null }>(
    sql,
    "SELECT key_hash, expires_at, revoked_at FROM api_keys WHERE key_id = ?",
    keyId,
  );
  // Compare even when there is no row, so timing does not tell which key ids exist.
  const matches = hashesEqual(row?.key_hash ?? "0".repeat(keyHash.length), keyHash);
  if (!row || !matches || row.revoked_at !== null) return false;
  return row.expires_at === null || row.expires_at > now;
}

/** A key valid at `now`: when it expires (null: never). Undefined: no such key, or revoked or expired. */
export function validKeyExpiry(sql: SqlStorage, keyId: string, now: number): { expiresAt: number | null } | undefined {
  const key = first<{ expires_at: number | null }>(
    sql,
    "SELECT expires_at FROM api_keys WHERE key_id = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)",
    keyId,
    now,
  );
  return key && { expiresAt: key.expires_at };
}

/** Revokes the key (a revoked one keeps its first time): when it was revoked, or null when there is no such key. */
export function revokeKey(sql: SqlStorage, keyId: string, now: number): number | null {
  const row = first<{ revoked_at: number | null }>(sql, "SELECT revoked_at FROM api_keys WHERE key_id = ?", keyId);
  if (!row) return null;
  const revokedAt = row.revoked_at ?? now;
  sql.exec("UPDATE api_keys SET revoked_at = ? WHERE key_id = ?", revokedAt, keyId);
  return revokedAt;
}

/** Revokes every key not revoked yet (the account closing): how many. */
export function revokeAllKeys(sql: SqlStorage, now: number): number {
  return sql.exec("UPDATE api_keys SET revoked_at = ? WHERE revoked_at IS NULL RETURNING key_id", now).toArray().length;
}

export function listKeys(sql: SqlStorage): KeySummary[] {
  return all<KeySummary>(
    sql,
    "SELECT key_id AS keyId, created_at AS createdAt, expires_at AS expiresAt, revoked_at AS revokedAt FROM api_keys ORDER BY created_at",
  );
}
