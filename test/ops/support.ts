/** Helpers for the operations tests: finish batches, back-date rows, look inside objects. */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, vi } from "vitest";
import { DAY_MS } from "../../src/domain/retention-policy";
import { accountStub, batchStub, drainOutbox, newBatch, runInBatch } from "../helpers";

export { DAY_MS };

/** Tables a Durable Object holds (its own, not the runtime's). */
export function tablesOf(state: DurableObjectState): string[] {
  return state.storage.sql
    .exec<{ name: string }>(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'",
    )
    .toArray()
    .map((r) => r.name)
    .sort();
}

export function rows<T = Record<string, unknown>>(
  state: DurableObjectState,
  query: string,
  ...binds: SqlStorageValue[]
): T[] {
  return state.storage.sql.exec(query, ...binds).toArray() as T[];
}

export function inAccount<R>(accountId: string, fn: (state: DurableObjectState) => R | Promise<R>): Promise<R> {
  return runInDurableObject(accountStub(accountId), (_o, state) => fn(state));
}

/**
 * A batch of `n` items that all ran: the first `failed` fail, the rest complete with a
 * result stored in R2 (as the executor stores it). Its outbox is drained.
 */
export async function finishedBatch(apiKey: string, n: number, failed = 0, extra: Record<string, unknown> = {}) {
  const { batchId, itemIds } = await newBatch(apiKey, n, extra);
  const stub = batchStub(batchId);
  for (const [i, itemId] of itemIds.entries()) {
    const lease = await stub.startItem(itemId);
    if (lease.action !== "run") throw new Error(`not started: ${lease.reason}`);
    if (i < failed) {
      await stub.failItem(itemId, lease.attempt, { code: "HTTP_404", message: "Not Found" });
    } else {
      const resultKey = `results/${batchId}/${itemId}`;
      await env.RESULTS.put(resultKey, JSON.stringify({ i }), { httpMetadata: { contentType: "application/json" } });
      await stub.completeItem(itemId, lease.attempt, { i }, { resultKey, statusCode: 200 });
    }
  }
  await drainOutbox(batchId);
  return { batchId, itemIds };
}

/** Moves a finished batch's finishedAt `days` into the past (as if it finished then). */
export async function backdateFinish(batchId: string, days: number): Promise<void> {
  await runInBatch(batchId, (_o, state) => {
    state.storage.sql.exec("UPDATE batch SET finished_at = finished_at - ? WHERE id = 1", days * DAY_MS);
  });
}

export async function resultKeys(batchId: string): Promise<string[]> {
  return (await env.RESULTS.list({ prefix: `results/${batchId}/` })).objects.map((o) => o.key);
}

/** Captures every console.log / console.error line (JSON lines parsed, others kept as text). */
export function captureLogs() {
  const lines: string[] = [];
  const log = vi
    .spyOn(console, "log")
    .mockImplementation((...args: unknown[]) => void lines.push(args.map(String).join(" ")));
  const error = vi
    .spyOn(console, "error")
    .mockImplementation((...args: unknown[]) => void lines.push(args.map(String).join(" ")));
  return {
    lines,
    json(): Record<string, unknown>[] {
      return lines.flatMap((l) => {
        try {
          const parsed: unknown = JSON.parse(l);
          return parsed !== null && typeof parsed === "object" ? [parsed as Record<string, unknown>] : [];
        } catch {
          return [];
        }
      });
    },
    restore() {
      log.mockRestore();
      error.mockRestore();
    },
  };
}

export function expectIsoNow(iso: string): void {
  expect(Math.abs(Date.parse(iso) - Date.now())).toBeLessThan(60_000);
}
