/**
 * The reference model: what the API promises, written down as small plain rules with no
 * storage and no concurrency, independent of src/domain. The harness runs every command
 * against the real objects and against this model, and compares after every step.
 */
export type ItemStatus = "pending" | "running" | "completed" | "failed" | "cancelled";
export type BatchStatus = ItemStatus;
export type Outcome = "completed" | "failed";

/** Attempts an item gets before a transient failure is final (LIMITS.maxAttempts). */
export const MAX_ATTEMPTS = 3;

export interface MItem {
  id: string;
  status: ItemStatus;
  /** Attempts granted in this round; the latest one's number is the lease token. */
  attempts: number;
  /** The attempt that may settle the item; kept after it settled, cleared on requeue and retry. */
  leaseAttempt: number | null;
  round: number;
  /** The dispatch token the item's latest queue message carries. */
  token: number;
  /** Credits the item's current round was charged (the item view's creditsUsed). */
  creditsUsed: number;
  /** The last settlement the executor sent, so it can be delivered again. */
  lastSettle: { attempt: number; outcome: Outcome; retryable: boolean; charged: boolean } | null;
}

export interface MBatch {
  id: string;
  price: number;
  status: BatchStatus;
  everStarted: boolean;
  items: MItem[];
  /** Credits ever reserved, consumed and refunded for this batch (the batch view's figures). */
  reserved: number;
  used: number;
  refunded: number;
  /** Retry holds made so far (each one numbers the next hold key). */
  retryHolds: number;
  create: { idempotencyKey: string; body: string } | null;
}

export interface Balances {
  granted: number;
  balance: number;
  reserved: number;
  used: number;
  refunded: number;
}

export type LedgerKind = "grant" | "reserve" | "consume" | "refund";

export class Model {
  readonly batches: MBatch[] = [];
  readonly credits: Balances;
  /** Expected ledger: idempotency key -> movement. Every key appears once. */
  readonly ledger = new Map<string, { kind: LedgerKind; amount: number }>();
  lastGrant: { key: string; amount: number } | null = null;

  constructor(accountId: string, opening: number) {
    this.credits = { granted: opening, balance: opening, reserved: 0, used: 0, refunded: 0 };
    if (opening > 0) this.ledger.set(`grant:open:${accountId}`, { kind: "grant", amount: opening });
  }

  // ---- credit movements -----------------------------------------------------------------

  private book(key: string, kind: LedgerKind, amount: number): void {
    if (this.ledger.has(key)) throw new Error(`model: ledger key ${key} used twice`);
    this.ledger.set(key, { kind, amount });
    const c = this.credits;
    if (kind === "grant") {
      c.granted += amount;
      c.balance += amount;
    } else if (kind === "reserve") {
      c.balance -= amount;
      c.reserved += amount;
    } else if (kind === "consume") {
      c.reserved -= amount;
      c.used += amount;
    } else {
      c.reserved -= amount;
      c.balance += amount;
      c.refunded += amount;
    }
  }

  grant(key: string, amount: number): void {
    this.book(`grant:${key}`, "grant", amount);
    this.lastGrant = { key, amount };
  }

  canReserve(amount: number): boolean {
    return this.credits.balance >= amount;
  }

  // ---- batches ----------------------------------------------------------------------------

  addBatch(id: string, itemIds: string[], price: number, create: MBatch["create"]): MBatch {
    const batch: MBatch = {
      id,
      price,
      status: "pending",
      everStarted: false,
      items: itemIds.map((itemId) => ({
        id: itemId,
        status: "pending",
        attempts: 0,
        leaseAttempt: null,
        round: 1,
        token: 0,
        creditsUsed: 0,
        lastSettle: null,
      })),
      reserved: price * itemIds.length,
      used: 0,
      refunded: 0,
      retryHolds: 0,
      create,
    };
    this.book(`${id}:create`, "reserve", batch.reserved);
    this.batches.push(batch);
    return batch;
  }

  /** Batch status from its items: cancelled stays cancelled; otherwise running once anything started. */
  private refreshStatus(b: MBatch): void {
    if (b.status === "cancelled") return;
    const n = (s: ItemStatus) => b.items.filter((i) => i.status === s).length;
    if (n("pending") + n("running") > 0) b.status = b.everStarted ? "running" : "pending";
    else b.status = n("completed") === 0 && n("failed") > 0 ? "failed" : "completed";
  }

  start(
    b: MBatch,
    item: MItem,
    token: number | undefined,
  ):
    | { action: "run"; attempt: number }
    | { action: "drop"; reason: "BATCH_CANCELLED" | "ITEM_NOT_PENDING" | "STALE_DISPATCH" } {
    if (b.status === "cancelled") return { action: "drop", reason: "BATCH_CANCELLED" };
    if (item.status !== "pending") return { action: "drop", reason: "ITEM_NOT_PENDING" };
    if (token !== undefined && token !== item.token) return { action: "drop", reason: "STALE_DISPATCH" };
    item.attempts += 1;
    item.leaseAttempt = item.attempts;
    item.status = "running";
    b.everStarted = true;
    this.refreshStatus(b);
    return { action: "run", attempt: item.attempts };
  }

  /** A dispatcher's new queue message for a pending item (the old message becomes stale). */
  redispatch(_b: MBatch, item: MItem): void {
    if (item.status === "pending") item.token += 1;
  }

  /**
   * `charged`: a failure at an extraction limit. The work was done, so it is paid for like
   * a completion (consumed, not refunded), and it is final: it would fail the same way again.
   */
  settle(
    b: MBatch,
    item: MItem,
    attempt: number,
    outcome: Outcome,
    retryable: boolean,
    charged = false,
  ):
    | { ok: true; outcome: "settled" | "duplicate" | "requeued" }
    | { ok: true; outcome: "ignored"; reason: "STALE_ATTEMPT" | "ITEM_NOT_RUNNING" } {
    item.lastSettle = { attempt, outcome, retryable, charged };
    if (item.leaseAttempt !== attempt) {
      return { ok: true, outcome: "ignored", reason: item.status === "running" ? "STALE_ATTEMPT" : "ITEM_NOT_RUNNING" };
    }
    if (item.status !== "running") {
      return item.status === outcome
        ? { ok: true, outcome: "duplicate" }
        : { ok: true, outcome: "ignored", reason: "ITEM_NOT_RUNNING" };
    }
    if (outcome === "failed" && retryable && !charged && item.attempts < MAX_ATTEMPTS && b.status !== "cancelled") {
      this.requeue(b, item);
      return { ok: true, outcome: "requeued" };
    }
    this.finish(b, item, outcome, outcome === "completed" || charged);
    return { ok: true, outcome: "settled" };
  }

  private requeue(b: MBatch, item: MItem): void {
    item.status = "pending";
    item.leaseAttempt = null;
    this.refreshStatus(b);
  }

  /** The item ends as `outcome`; `paid`: its credits are consumed, else refunded. */
  private finish(b: MBatch, item: MItem, outcome: Outcome, paid: boolean): void {
    item.status = outcome;
    item.creditsUsed = paid ? b.price : 0;
    const key = `${b.id}:${item.id}:r${item.round}:${paid ? "consume" : "refund"}`;
    if (paid) {
      b.used += b.price;
      this.book(key, "consume", b.price);
    } else {
      b.refunded += b.price;
      this.book(key, "refund", b.price);
    }
    this.refreshStatus(b);
  }

  /** The lease of every running item runs out: back to pending, or failed after the last attempt. */
  expireLeases(b: MBatch): void {
    for (const item of b.items) {
      if (item.status !== "running") continue;
      if (item.attempts < MAX_ATTEMPTS && b.status !== "cancelled") this.requeue(b, item);
      else this.finish(b, item, "failed", false);
    }
  }

  cancel(
    b: MBatch,
  ):
    | { status: 200; body: { status: "cancelled"; cancelledItems: number; creditsRefunded: number } }
    | { status: 409; code: "ALREADY_TERMINAL" } {
    if (b.status !== "pending" && b.status !== "running") return { status: 409, code: "ALREADY_TERMINAL" };
    const pending = b.items.filter((i) => i.status === "pending");
    for (const item of pending) item.status = "cancelled";
    const refund = pending.length * b.price;
    b.status = "cancelled";
    if (refund > 0) {
      b.refunded += refund;
      this.book(`${b.id}:cancel`, "refund", refund);
    }
    return { status: 200, body: { status: "cancelled", cancelledItems: pending.length, creditsRefunded: refund } };
  }

  /**
   * Retry. `fault`: the reservation call to the account fails, before the account saw it
   * ("lost") or after the account applied it ("replyLost"); either way the batch gives
   * the hold up, and a hold the account took is released (refunded) through the outbox.
   */
  retry(
    b: MBatch,
    fault: "none" | "lost" | "replyLost",
  ):
    | { status: 202; body: { status: "queued"; retriedCount: number } }
    | { status: 400 | 403 | 409 | 503; code: string } {
    if (b.status === "cancelled") return { status: 409, code: "BATCH_CANCELLED" };
    const failed = b.items.filter((i) => i.status === "failed");
    if (failed.length === 0) return { status: 400, code: "NO_FAILED_ITEMS" };
    const amount = failed.length * b.price;
    const key = `${b.id}:retry:${b.retryHolds + 1}`;
    if (fault !== "none") {
      b.retryHolds += 1;
      if (fault === "replyLost" && this.canReserve(amount)) {
        this.book(key, "reserve", amount);
        this.book(`${key}:void`, "refund", amount);
      }
      return { status: 503, code: "UNAVAILABLE" };
    }
    if (!this.canReserve(amount)) return { status: 403, code: "INSUFFICIENT_CREDITS" };
    b.retryHolds += 1;
    this.book(key, "reserve", amount);
    b.reserved += amount;
    for (const item of failed) {
      item.status = "pending";
      item.round += 1;
      item.attempts = 0;
      item.leaseAttempt = null;
      item.creditsUsed = 0;
    }
    this.refreshStatus(b);
    return { status: 202, body: { status: "queued", retriedCount: failed.length } };
  }

  /** Credits still held for items that have not finished: what the account's `reserved` must be. */
  heldByItems(): number {
    let held = 0;
    for (const b of this.batches)
      for (const i of b.items) if (i.status === "pending" || i.status === "running") held += b.price;
    return held;
  }
}

export function countsOf(b: MBatch): Record<ItemStatus, number> {
  const counts: Record<ItemStatus, number> = { pending: 0, running: 0, completed: 0, failed: 0, cancelled: 0 };
  for (const i of b.items) counts[i.status]++;
  return counts;
}
