/**
 * The account object has one alarm and seven reasons to wake: a pending hold past its
 * deadline, the oldest Idempotency-Key expiring, slots freed for a waiting batch (at once),
 * a webhook delivery due, the previous webhook secret's overlap ending, a live view to
 * close, and a key copy to drop (a revoke not confirmed yet, a key that expired). setAlarm
 * replaces whatever alarm another reason armed, so every reason counts each time: the
 * alarm is armed at the earliest. Reads a migrated schema.
 */
import { nextDeliveryAt } from "../webhooks/deliveries";
import { previousSecretExpiry } from "../webhooks/secrets";
import { nextHoldDeadline } from "./holds";
import { nextKeyExpiry } from "./idempotency";
import { nextCopyDropAt } from "./key-copies";
import { nextLiveViewCloseAt } from "./live-views";

/** When the alarm must next run, or null when nothing waits for it. */
export function nextAlarmAt(sql: SqlStorage, slotsFreed: boolean, now: number): number | null {
  const times = [
    nextHoldDeadline(sql),
    nextKeyExpiry(sql),
    slotsFreed ? now : null,
    nextDeliveryAt(sql),
    previousSecretExpiry(sql),
    nextLiveViewCloseAt(sql),
    nextCopyDropAt(sql),
  ].filter((t): t is number => t !== null);
  return times.length === 0 ? null : Math.min(...times);
}
