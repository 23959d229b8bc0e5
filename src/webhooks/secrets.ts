/**
 * An account's webhook signing secrets, in its `account` row: the current one, and after a
 * rotation the one before it until the overlap ends. Both sign deliveries during the overlap,
 * so a receiver can switch to the new secret whenever it likes within it. At most two are ever
 * kept: rotating again during an overlap ends the older one, and the alarm wipes an expired one.
 */
import { first } from "../durable/sql";

export const DEFAULT_OVERLAP_SECONDS = 24 * 60 * 60;
/** The longest overlap a rotation may ask for: old secrets are kept no longer than this. */
export const MAX_OVERLAP_SECONDS = 7 * 24 * 60 * 60;

export const WEBHOOK_SECRET_ROTATION_MIGRATION = `
  -- v7: webhook secret rotation. The secret before the last rotation keeps signing until
  -- webhook_previous_until, then is wiped: never more than one old secret.
  ALTER TABLE account ADD COLUMN webhook_previous_secret TEXT;
  ALTER TABLE account ADD COLUMN webhook_previous_until INTEGER;
`;

type SecretRow = {
  webhook_secret: string | null;
  webhook_previous_secret: string | null;
  webhook_previous_until: number | null;
};

export interface SecretState {
  secret: string;
  /** When the previous secret stops signing; null when only `secret` signs. */
  previousUntil: number | null;
}

export function newWebhookSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return `whsec_${btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_")
    .replace(/=+$/, "")}`;
}

function row(sql: SqlStorage): SecretRow | undefined {
  return first<SecretRow>(sql, "SELECT webhook_secret, webhook_previous_secret, webhook_previous_until FROM account");
}

/** The current secret (made on first use, so older accounts get one too), and the previous one's end. */
export function currentSecret(sql: SqlStorage, now: number): SecretState {
  const r = row(sql);
  if (r?.webhook_secret) {
    const live =
      r.webhook_previous_secret !== null && r.webhook_previous_until !== null && r.webhook_previous_until > now;
    return { secret: r.webhook_secret, previousUntil: live ? r.webhook_previous_until : null };
  }
  const secret = newWebhookSecret();
  sql.exec("UPDATE account SET webhook_secret = ?", secret);
  return { secret, previousUntil: null };
}

/** The secrets that sign a delivery sent at `now`: the current one first, then the previous one while it lasts. */
export function signingSecrets(sql: SqlStorage, now: number): string[] {
  const { secret, previousUntil } = currentSecret(sql, now);
  if (previousUntil === null) return [secret];
  return [secret, row(sql)!.webhook_previous_secret!];
}

/**
 * A new current secret; the one it replaces signs for `overlapMs` more (0: it stops now).
 * A secret that was still in its overlap is dropped. Call in a transaction.
 */
export function rotateSecret(sql: SqlStorage, now: number, overlapMs: number): SecretState {
  const before = row(sql)?.webhook_secret ?? null;
  const secret = newWebhookSecret();
  const previousUntil = before !== null && overlapMs > 0 ? now + overlapMs : null;
  sql.exec(
    "UPDATE account SET webhook_secret = ?, webhook_previous_secret = ?, webhook_previous_until = ?",
    secret,
    previousUntil === null ? null : before,
    previousUntil,
  );
  return { secret, previousUntil };
}

/** When the alarm should wipe the previous secret, if one is kept. */
export function previousSecretExpiry(sql: SqlStorage): number | null {
  return row(sql)?.webhook_previous_until ?? null;
}

/** Wipes the previous secret once its overlap is over (retention: it is never needed again). */
export function wipeExpiredSecret(sql: SqlStorage, now: number): void {
  sql.exec(
    "UPDATE account SET webhook_previous_secret = NULL, webhook_previous_until = NULL WHERE webhook_previous_until <= ?",
    now,
  );
}
