/** Shared test helpers: call the Worker, make accounts and batches, read objects directly. */
import { env, exports } from "cloudflare:workers";
import { expect } from "vitest";

export const ADMIN_TOKEN = "test-admin-token";
export const adminHeaders = { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" };

export function call(path: string, init: RequestInit = {}): Promise<Response> {
  return exports.default.fetch(new Request(`https://api.test${path}`, init));
}

export async function callJson<T = any>(
  path: string,
  init: RequestInit = {},
): Promise<{ status: number; body: T; res: Response }> {
  return readAnswer<T>(await call(path, init));
}

/** A response with its body read: parsed when it is JSON, else the text. */
export async function readAnswer<T = any>(res: Response): Promise<{ status: number; body: T; res: Response }> {
  const text = await res.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, body, res };
}

export function keyHeaders(apiKey: string, extra: Record<string, string> = {}) {
  return { "x-api-key": apiKey, "content-type": "application/json", ...extra };
}

export async function newAccount(
  credits = 1000,
  name = "test",
): Promise<{ accountId: string; apiKey: string; keyId: string }> {
  const { status, body } = await callJson("/admin/accounts", {
    method: "POST",
    headers: adminHeaders,
    body: JSON.stringify({ name, credits }),
  });
  expect(status).toBe(201);
  return body;
}

export function urls(n: number, prefix = "https://example.com/page"): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}/${i}`);
}

export async function createBatch(apiKey: string, body: unknown, extraHeaders: Record<string, string> = {}) {
  return callJson("/api/batch/scrape", {
    method: "POST",
    headers: keyHeaders(apiKey, extraHeaders),
    body: JSON.stringify(body),
  });
}

/** Creates a batch and returns its id and item ids (in order). */
export async function newBatch(apiKey: string, n: number, extra: Record<string, unknown> = {}) {
  const created = await createBatch(apiKey, { urls: urls(n), ...extra });
  expect(created.status).toBe(202);
  const batchId: string = created.body.batchId;
  const itemIds: string[] = [];
  let cursor: string | null = null;
  do {
    const page: { body: any } = await callJson(
      `/api/batch/scrape/${batchId}?limit=100${cursor ? `&cursor=${cursor}` : ""}`,
      {
        headers: keyHeaders(apiKey),
      },
    );
    itemIds.push(...page.body.items.map((i: { uuid: string }) => i.uuid));
    cursor = page.body.nextCursor;
  } while (cursor);
  return { batchId, itemIds };
}

export function batchStub(batchId: string) {
  return env.BATCH.getByName(batchId);
}

export function accountStub(accountId: string) {
  return env.ACCOUNT.getByName(accountId);
}

export async function getBatch(apiKey: string, batchId: string) {
  return callJson(`/api/batch/scrape/${batchId}`, { headers: keyHeaders(apiKey) });
}

export async function getCredits(apiKey: string) {
  const { status, body } = await callJson("/api/credits", { headers: keyHeaders(apiKey) });
  expect(status).toBe(200);
  return body as { balance: number; reserved: number; used: number; refunded: number; granted: number };
}

/** Runs a batch object's alarm until its outbox to the account is empty (deliveries done). */
export async function drainOutbox(batchId: string) {
  for (let i = 0; i < 20; i++) {
    const pending = await runInBatch(batchId, (o) => o.toAccount.size());
    if (pending === 0) return;
    await runInBatch(batchId, (o) => o.alarm());
  }
  throw new Error(`outbox of ${batchId} did not drain`);
}

import { runInDurableObject } from "cloudflare:test";
import type { AccountObject } from "../src/account/account-object";
import type { BatchObject } from "../src/batch/batch-object";

export function runInBatch<R>(
  batchId: string,
  fn: (o: BatchObject, state: DurableObjectState) => R | Promise<R>,
): Promise<R> {
  return runInDurableObject(batchStub(batchId), fn);
}

/**
 * The money invariant at a quiet moment: granted = balance + reserved + used, and the
 * account's reserved credits equal the credits held by non-terminal items of its batches.
 */
export async function expectBalanced(apiKey: string, batchIds: string[]) {
  for (const id of batchIds) await drainOutbox(id);
  const c = await getCredits(apiKey);
  expect(c.granted).toBe(c.balance + c.reserved + c.used);
  let held = 0;
  let used = 0;
  for (const id of batchIds) {
    const { body } = await getBatch(apiKey, id);
    held += (body.pendingCount + body.runningCount) * body.creditsPerItem;
    // Completions, and failures charged at an extraction limit (every round of a retried batch).
    used += body.creditsUsed;
    expect(body.creditsReserved).toBe(
      body.creditsUsed + body.creditsRefunded + (body.pendingCount + body.runningCount) * body.creditsPerItem,
    );
    expect(body.pendingCount + body.runningCount + body.completedCount + body.failedCount + body.cancelledCount).toBe(
      body.totalUrls,
    );
  }
  expect(c.reserved).toBe(held);
  expect(c.used).toBe(used);
  return c;
}

/** A statement an object ran while watched, with its cursor (rowsRead, rowsWritten). */
export interface SqlRun {
  query: string;
  cursor: SqlStorageCursor<Record<string, SqlStorageValue>>;
}

/**
 * Runs `fn` while recording every statement run on `sql` (an object's ctx.storage.sql, from
 * runInDurableObject), then puts the real exec back. For tests of what a call costs.
 */
export async function watchSql<R>(sql: SqlStorage, fn: () => R | Promise<R>): Promise<{ value: R; runs: SqlRun[] }> {
  const target = sql as unknown as { exec: (query: string, ...binds: SqlStorageValue[]) => SqlRun["cursor"] };
  const real = target.exec;
  const runs: SqlRun[] = [];
  target.exec = function (this: unknown, query: string, ...binds: SqlStorageValue[]) {
    const cursor = real.call(this, query, ...binds);
    runs.push({ query, cursor });
    return cursor;
  };
  try {
    return { value: await fn(), runs };
  } finally {
    target.exec = real;
  }
}

type ReserveHold = AccountObject["reserveHold"];
export type ReserveHoldCall = (input: Parameters<ReserveHold>[0]) => Promise<ReturnType<ReserveHold>>;

/**
 * A batch object's calls to its account's `reserveHold` (a retry's reservation) go through
 * what `replace` makes of the real call; `restore` puts the real account stub back. The
 * object's `accountStub` field is there for this; an eviction ends the fault.
 */
export async function interceptReserveHold(
  batchId: string,
  replace: (real: ReserveHoldCall, restore: () => void) => ReserveHoldCall,
): Promise<void> {
  await runInBatch(batchId, (o) => {
    const real = o.accountStub;
    const restore = () => {
      o.accountStub = real;
    };
    o.accountStub = (id) =>
      new Proxy(real(id), {
        get: (target, prop) =>
          prop === "reserveHold"
            ? replace((input) => target.reserveHold(input) as Promise<ReturnType<ReserveHold>>, restore)
            : Reflect.get(target, prop),
      });
  });
}

/**
 * A reset: the runtime aborts the object (a deploy, a crash, a limit exceeded). Unlike an
 * eviction it does not wait for calls in flight, which fail. Storage and the alarm stay;
 * later calls need a fresh stub (batchStub() and accountStub() make one each time).
 */
export async function resetObject(stub: DurableObjectStub): Promise<void> {
  const aborted = await runInDurableObject(stub, (_o: unknown, state) => state.abort("test reset")).then(
    () => false,
    (err: unknown) => err instanceof Error && err.message.includes("test reset"),
  );
  if (!aborted) throw new Error("the object was not reset");
}
