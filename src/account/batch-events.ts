/**
 * A batch object's outbox as the account applies it: each event, in order, against the
 * modules that own its tables (holds, settlement and ledger, batch index, slots, webhook
 * deliveries, retention). Every event is idempotent, by hold key, ledger key or version,
 * and says whether it changed anything. An event that would break the books throws, which
 * rolls back the account object's transaction around the whole call.
 */
import type { AccountEvent } from "../domain/account-events";
import { recordEvent } from "../webhooks/deliveries";
import { showBatch, unindexBatch, updateIndex } from "./batch-index";
import { confirmHold, voidHold } from "./holds";
import { forgetKeysOf } from "./idempotency";
import { inLedger } from "./ledger";
import { forgetBatch } from "./retention";
import { Settlement } from "./settlement";
import { claimSlots, dropSlots, type SlotContext } from "./slots";

/**
 * In a transaction: applies one batch's events in order and returns how many changed
 * something. Their settlements go through one Settlement, written once at the end.
 */
export function applyOutbox(
  sql: SqlStorage,
  batchId: string,
  events: readonly AccountEvent[],
  slots: SlotContext,
): number {
  const settlement = new Settlement(sql, batchId);
  let applied = 0;
  for (const event of events) if (applyEvent(sql, settlement, event, slots)) applied++;
  settlement.flush();
  return applied;
}

/** An item's fetch time as usage (none when the item never got a response). */
function timed(durationMs: number | null | undefined): { durationMs?: number; timed?: number } {
  return typeof durationMs === "number" ? { durationMs, timed: 1 } : {};
}

/** Returns true when the event changed something (false for a duplicate). */
function applyEvent(sql: SqlStorage, settlement: Settlement, event: AccountEvent, slots: SlotContext): boolean {
  const batchId = settlement.batchId;
  switch (event.kind) {
    case "confirm": {
      const hold = confirmHold(sql, event.key);
      if (hold?.purpose === "create") showBatch(sql, batchId);
      return hold !== null;
    }
    case "void": {
      const hold = voidHold(sql, event.key, batchId, Date.now());
      if (!hold) return false;
      // The hold's state guards this refund: its key is new, or the books are wrong (refused).
      if (hold.amount !== 0) {
        settlement.release(
          "refund",
          hold.amount,
          { key: `${event.key}:void`, itemId: null, note: "reservation released" },
          "refuse",
        );
      }
      if (hold.purpose === "create") {
        dropSlots(sql, batchId);
        unindexBatch(sql, batchId);
        settlement.batchRemoved();
        forgetKeysOf(sql, batchId);
      }
      return true;
    }
    case "consume": {
      const outcome = event.outcome ?? (event.note === "item failed, charged" ? "failed" : "completed");
      return settlement.release(
        "consume",
        event.amount,
        { key: event.key, itemId: event.itemId, note: event.note ?? "item completed" },
        "skip",
        { [outcome]: 1, ...timed(event.durationMs) },
      );
    }
    case "refund":
      // A refund of nothing moves nothing and writes no ledger row (it counts unless its key is taken).
      if (event.amount === 0) return !inLedger(sql, event.key);
      return settlement.release(
        "refund",
        event.amount,
        { key: event.key, itemId: event.itemId ?? null, note: event.note },
        "skip",
        // An item's refund is its failure; a batch's (no item) is its cancel.
        event.itemId !== undefined
          ? { failed: 1, ...timed(event.durationMs) }
          : { cancelled: event.items ?? Number(/^batch cancelled: (\d+)/.exec(event.note)?.[1] ?? 0) },
      );
    case "status":
      return updateIndex(sql, batchId, event.version, event.snapshot);
    case "slots":
      claimSlots(sql, slots, batchId, event.version, event.wanted);
      return true;
    case "webhook":
      return recordEvent(sql, event.url, event.event);
    case "forget": {
      // forget reads the batch's reserved credits from its row: write the settlements so far first.
      settlement.flush();
      const { forgotten, slotsFreed } = forgetBatch(sql, batchId);
      if (slotsFreed) slots.onFreed();
      return forgotten;
    }
  }
}
