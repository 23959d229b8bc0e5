/**
 * Webhook deliveries, kept by the account object: one row per event (idempotent by event
 * id), signed and POSTed from the account's alarm, retried with exponential backoff for at
 * least 24 hours, every outcome recorded for the owner to list.
 */
import { checkTarget } from "../domain/target-safety";
import type { WebhookEvent } from "../domain/webhook-events";
import { all, first } from "../durable/sql";
import { EVENT_ID_HEADER, SIGNATURE_HEADER, signatureHeader, TIMESTAMP_HEADER } from "./signature";

export const WEBHOOK_RETRY_WINDOW_MS = 24 * 60 * 60 * 1000;
const MAX_BACKOFF_MS = 60 * 60 * 1000;
const DELIVERIES_PER_ALARM = 20;
const DELIVERY_TIMEOUT_MS = 10_000;

export const WEBHOOK_MIGRATION = `
  -- v4: webhooks. The signing secret, and one row per event to deliver.
  ALTER TABLE account ADD COLUMN webhook_secret TEXT;
  CREATE TABLE webhook_deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    batch_id TEXT NOT NULL,
    type TEXT NOT NULL,
    url TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    last_status INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    delivered_at INTEGER
  );
  CREATE INDEX webhook_due ON webhook_deliveries (state, next_attempt_at);
`;

export interface DeliveryView {
  eventId: string;
  type: string;
  batchId: string;
  state: "pending" | "delivered" | "failed";
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  createdAt: number;
  deliveredAt: number | null;
  nextAttemptAt: number | null;
}

/** Records an event to deliver; false when it was recorded already. In a transaction. */
export function recordEvent(sql: SqlStorage, url: string, event: WebhookEvent): boolean {
  const rows = sql
    .exec(
      `INSERT INTO webhook_deliveries (event_id, batch_id, type, url, payload, state, next_attempt_at, created_at)
       VALUES (?, ?, ?, ?, ?, 'pending', ?, ?) ON CONFLICT (event_id) DO NOTHING RETURNING seq`,
      event.id,
      event.batchId,
      event.type,
      url,
      JSON.stringify(event),
      Date.now(),
      Date.now(),
    )
    .toArray();
  return rows.length > 0;
}

export function nextDeliveryAt(sql: SqlStorage): number | null {
  return (
    first<{ t: number | null }>(sql, "SELECT min(next_attempt_at) AS t FROM webhook_deliveries WHERE state = 'pending'")
      ?.t ?? null
  );
}

export function listDeliveries(
  sql: SqlStorage,
  cursor: number | null,
  limit: number,
): { deliveries: DeliveryView[]; nextCursor: number | null } {
  const rows = all<DeliveryView & { seq: number }>(
    sql,
    `SELECT seq, event_id AS eventId, type, batch_id AS batchId, state, attempts, last_status AS lastStatus, last_error AS lastError,
            created_at AS createdAt, delivered_at AS deliveredAt, next_attempt_at AS nextAttemptAt
     FROM webhook_deliveries WHERE seq < ? ORDER BY seq DESC LIMIT ?`,
    cursor ?? Number.MAX_SAFE_INTEGER,
    limit + 1,
  );
  const page = rows.slice(0, limit);
  return {
    deliveries: page.map(({ seq: _seq, ...d }) => d),
    nextCursor: rows.length > limit ? page[page.length - 1]!.seq : null,
  };
}

export interface DeliveryOptions {
  /** Read at each attempt: a delivery is signed with the secrets valid when it is sent (a rotation may happen between attempts). */
  secrets: () => readonly string[];
  allowLoopback: boolean;
  baseDelayMs: number;
}

/** Sends what is due, one at a time; every outcome is written back. */
export async function deliverDue(sql: SqlStorage, options: DeliveryOptions): Promise<void> {
  const due = all<{ event_id: string; url: string; payload: string; attempts: number; created_at: number }>(
    sql,
    "SELECT event_id, url, payload, attempts, created_at FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?",
    Date.now(),
    DELIVERIES_PER_ALARM,
  );
  for (const d of due) {
    const outcome = await attempt(d.url, d.event_id, d.payload, options);
    const now = Date.now();
    const attempts = d.attempts + 1;
    if (outcome.ok) {
      sql.exec(
        "UPDATE webhook_deliveries SET state = 'delivered', attempts = ?, last_status = ?, last_error = NULL, delivered_at = ?, next_attempt_at = NULL WHERE event_id = ? AND state = 'pending'",
        attempts,
        outcome.status,
        now,
        d.event_id,
      );
      continue;
    }
    const giveUp = outcome.final || now - d.created_at >= WEBHOOK_RETRY_WINDOW_MS;
    const next = Math.min(options.baseDelayMs * 2 ** (attempts - 1), MAX_BACKOFF_MS) * (0.75 + Math.random() / 2);
    sql.exec(
      "UPDATE webhook_deliveries SET state = ?, attempts = ?, last_status = ?, last_error = ?, next_attempt_at = ? WHERE event_id = ? AND state = 'pending'",
      giveUp ? "failed" : "pending",
      attempts,
      outcome.status ?? null,
      outcome.error,
      giveUp ? null : now + Math.round(next),
      d.event_id,
    );
  }
}

type Attempt = { ok: true; status: number } | { ok: false; final: boolean; status?: number; error: string };

async function attempt(url: string, eventId: string, body: string, options: DeliveryOptions): Promise<Attempt> {
  const target = checkTarget(url, { allowLoopback: options.allowLoopback });
  if (!target.ok) return { ok: false, final: true, error: `blocked target: ${target.reason}` };
  const timestamp = Math.floor(Date.now() / 1000);
  try {
    const res = await fetch(target.url, {
      method: "POST",
      redirect: "manual",
      signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS),
      headers: {
        "content-type": "application/json",
        "user-agent": "BatchScrapeWebhooks/1.0",
        [EVENT_ID_HEADER]: eventId,
        [TIMESTAMP_HEADER]: String(timestamp),
        [SIGNATURE_HEADER]: await signatureHeader(options.secrets(), timestamp, body),
      },
      body,
    });
    await res.body?.cancel();
    return res.ok
      ? { ok: true, status: res.status }
      : { ok: false, final: false, status: res.status, error: `HTTP ${res.status}` };
  } catch (err) {
    return { ok: false, final: false, error: String(err instanceof Error ? err.message : err) };
  }
}
