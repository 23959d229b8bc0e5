/**
 * The batch object's copies of API keys' validity (table `key_copies`), so that reading a
 * batch is one object call: the key is checked here, not at the account object. The account
 * lends a copy the first time this batch sees a key (it notes the loan in the same step it
 * checks the key, src/account/key-copies.ts) and pushes the key's end (revoked, expired,
 * account closed) before it reports the end done. An ended key keeps a marker row (no hash):
 * a loan still on its way when the end arrived finds the marker and is not kept.
 *
 * Expiry needs no push for reads: a copy carries its expiry and is checked against now.
 */
import type { KeyClaim, KeyCopy, KeyEnd, LendAnswer } from "../domain/key-claim";
import { first } from "../durable/sql";

/** valid: serve; refused: the key ended, expired or does not match; unknown: ask the account. */
export type CopyCheck = "valid" | "refused" | "unknown";

interface CopyRow {
  key_hash: string | null;
  expires_at: number | null;
  ended: KeyEnd | null;
}

export function checkCopy(sql: SqlStorage, claim: KeyClaim, now: number): CopyCheck {
  const row = first<CopyRow>(sql, "SELECT key_hash, expires_at, ended FROM key_copies WHERE key_id = ?", claim.keyId);
  if (!row) return "unknown";
  if (row.ended !== null || row.key_hash === null) return "refused";
  if (!sameDigest(row.key_hash, claim.keyHash)) return "refused";
  return row.expires_at === null || row.expires_at > now ? "valid" : "refused";
}

/** Keeps a lent copy, unless the key's end (or an earlier copy) is already here: those win. */
export function keepCopy(sql: SqlStorage, copy: KeyCopy, now: number): void {
  sql.exec(
    "INSERT INTO key_copies (key_id, key_hash, expires_at, stored_at) VALUES (?, ?, ?, ?) ON CONFLICT (key_id) DO NOTHING",
    copy.keyId,
    copy.keyHash,
    copy.expiresAt,
    now,
  );
}

/** The keys ended: their copies become markers (no hash), whether a copy was here or not. */
export function endCopies(sql: SqlStorage, keyIds: readonly string[], why: KeyEnd, now: number): void {
  for (const keyId of keyIds) {
    sql.exec(
      `INSERT INTO key_copies (key_id, key_hash, expires_at, ended, stored_at) VALUES (?, NULL, NULL, ?, ?)
       ON CONFLICT (key_id) DO UPDATE SET key_hash = NULL, ended = coalesce(key_copies.ended, excluded.ended)`,
      keyId,
      why,
      now,
    );
  }
}

/**
 * Whether `claim` may read this batch, and on whose word: "copy" (this object's copy of the
 * key's validity), "account" (the account admitted it and lent no copy to keep: past
 * MAX_KEY_COPIES), or null (refused). Without a copy it asks the account once (`lend`, an
 * await: other events run meanwhile, a key's end among them) and keeps what it lends. After
 * the await the copy is read again, so an end that arrived meanwhile wins.
 */
export async function admitClaim(
  sql: SqlStorage,
  claim: KeyClaim,
  lend: (claim: KeyClaim) => Promise<LendAnswer>,
): Promise<"copy" | "account" | null> {
  const known = checkCopy(sql, claim, Date.now());
  if (known !== "unknown") return known === "valid" ? "copy" : null;
  const answer = await lend(claim);
  if (!answer.valid) return null;
  if (answer.copy) keepCopy(sql, answer.copy, Date.now());
  const now = checkCopy(sql, claim, Date.now());
  if (answer.copy ? now !== "valid" : now === "refused") return null;
  return now === "valid" ? "copy" : "account";
}

/** Constant-time equality of two hex digests. */
function sameDigest(a: string, b: string): boolean {
  const encoder = new TextEncoder();
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  return x.byteLength === y.byteLength && crypto.subtle.timingSafeEqual(x, y);
}
