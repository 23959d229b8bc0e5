/**
 * What a request's API key claims once its MAC checked (src/account/keys.ts): the account
 * and key it names, and the SHA-256 of the whole key. A claim is not yet proof the key is
 * valid (it may be revoked or expired): the account object, or a batch object's copy of the
 * key's validity (src/batch/key-copies.ts), decides that.
 */
export interface KeyClaim {
  accountId: string;
  keyId: string;
  keyHash: string;
}

/** Why a key stopped working: its copies are dropped, and its live views closed, with this reason. */
export type KeyEnd = "revoked" | "expired";

/** A key's validity as the account lends it to a batch object: enough to check the key without asking again. */
export interface KeyCopy {
  keyId: string;
  keyHash: string;
  /** Epoch ms; null: never expires. */
  expiresAt: number | null;
}

/** The account's answer to a batch object asking about a key it holds no copy of; `copy` null: keep none. */
export type LendAnswer = { valid: false } | { valid: true; copy: KeyCopy | null };

/**
 * A batch object's answer to a read with a key claim for a batch it cannot vouch for (not
 * the claimed account's, removed, never created): the Worker checks the key with the
 * account, then reads as before, so a bad key is still 403 and a foreign batch still 404.
 */
export interface KeyUnchecked {
  ok: false;
  code: "KEY_UNCHECKED";
}
export const KEY_UNCHECKED: KeyUnchecked = { ok: false, code: "KEY_UNCHECKED" };
