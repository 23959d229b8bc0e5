/**
 * Shared by the in-workerd bench files: the result shape, statistics, paired baselines,
 * fixtures made through the objects' RPC, and probes that count what an object does.
 *
 * Timing caveat: in production workerd, Date.now() and performance.now() advance only
 * on I/O (a Spectre mitigation), so pure CPU work inside one event reads as 0 ms. Locally
 * (workerd under vitest) both clocks advance, with 1 ms resolution; every figure here is
 * local. That is why each one is printed as a ratio to a baseline taken in the same run.
 */
import { runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { expect } from "vitest";
import type { AccountObject } from "../src/account/account-object";
import type { BatchObject } from "../src/batch/batch-object";
import type { AccountEvent } from "../src/domain/account-events";
import type { BareObject, BareSchema } from "./bare-object";
import type { BenchResult } from "./result";

declare module "vitest" {
  interface TaskMeta {
    /** Read back by bench/run.mjs from vitest's JSON report. */
    bench?: BenchResult;
  }
}

/** The test env plus the bench Worker's own binding (bench/wrangler.bench.toml). */
export const benchEnv = env as typeof env & { BARE: DurableObjectNamespace<BareObject> };

export const ADMIN_TOKEN = "bench";

// ---- statistics -----------------------------------------------------------------------------

export interface Stats {
  n: number;
  min: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentiles: with few samples p99 is the maximum, which is what we want to see. */
export function stats(samples: number[]): Stats {
  const s = [...samples].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
  return {
    n: s.length,
    min: s[0] ?? NaN,
    p50: at(50),
    p99: at(99),
    max: s[s.length - 1] ?? NaN,
    mean: s.reduce((a, b) => a + b, 0) / s.length,
  };
}

export function median(samples: number[]): number {
  return stats(samples).p50;
}

export async function timed<T>(fn: () => Promise<T> | T): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

/**
 * Runs baseline, subject, baseline, subject, …, baseline, so every subject run sits
 * between two baseline runs; each ratio is subject / mean of its two neighbours. Shared
 * machines drift by 2-3x within a minute; pairing cancels most of it. With several
 * subjects they take turns (B S1 B S2 B S1 B S2 … B), each still between two baselines.
 */
export async function sandwich<K extends string>(
  reps: number,
  baseline: () => Promise<number>,
  subjects: Record<K, () => Promise<number>>,
) {
  const names = Object.keys(subjects) as K[];
  const base = [await baseline()];
  const runs = {} as Record<K, { runs: number[]; ratios: number[] }>;
  for (const name of names) runs[name] = { runs: [], ratios: [] };
  for (let i = 0; i < reps; i++) {
    for (const name of names) {
      const value = await subjects[name]();
      const before = base[base.length - 1]!;
      const after = await baseline();
      base.push(after);
      runs[name].runs.push(value);
      runs[name].ratios.push(value / ((before + after) / 2));
    }
  }
  const out = {} as Record<K, { value: number; ratio: number; runs: number[] }>;
  for (const name of names)
    out[name] = { value: median(runs[name].runs), ratio: median(runs[name].ratios), runs: runs[name].runs };
  return { baseline: median(base), baselineRuns: base, subjects: out };
}

/** Runs `total` calls of `fn`, at most `inFlight` at a time; returns the elapsed ms. */
export async function pool(total: number, inFlight: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(inFlight, total) }, async () => {
      while (next < total) await fn(next++);
    }),
  );
  return performance.now() - t0;
}

// ---- the bare baseline ----------------------------------------------------------------------

let bareSeq = 0;

/** A fresh bare object with the given schema. */
export async function bare(schema: BareSchema): Promise<DurableObjectStub<BareObject>> {
  const stub = benchEnv.BARE.getByName(`bare-${schema}-${bareSeq++}-${crypto.randomUUID()}`);
  await stub.setup(schema);
  return stub;
}

/** ms for `calls` single-row UPDATE RPCs to one bare object, `inFlight` at a time. */
export async function bareRpcMs(stub: DurableObjectStub<BareObject>, calls: number, inFlight: number): Promise<number> {
  return pool(calls, inFlight, () => stub.bump());
}

// ---- fixtures -------------------------------------------------------------------------------

/** Realistic URLs (about 60 characters), distinct per batch. */
export function urls(n: number, tag = crypto.randomUUID().slice(0, 8)): string[] {
  return Array.from({ length: n }, (_, i) => `https://www.example.com/catalogue/${tag}/products/item-${i}?ref=bench`);
}

export function call(path: string, init: RequestInit = {}): Promise<Response> {
  return exports.default.fetch(new Request(`https://bench.test${path}`, init));
}

export async function newAccount(credits = 1_000_000_000): Promise<{ accountId: string; apiKey: string }> {
  const res = await call("/admin/accounts", {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "bench", credits }),
  });
  expect(res.status).toBe(201);
  return res.json();
}

export function keyHeaders(apiKey: string): Record<string, string> {
  return { "x-api-key": apiKey, "content-type": "application/json" };
}

export function accountStub(accountId: string): DurableObjectStub<AccountObject> {
  return benchEnv.ACCOUNT.getByName(accountId);
}

export function batchStub(batchId: string): DurableObjectStub<BatchObject> {
  return benchEnv.BATCH.getByName(batchId);
}

/**
 * Creates a batch through the objects' RPC, as the create route does (reserve at the
 * account, then create in the batch object), without the 3-4 MB JSON body of a 100k batch.
 */
export async function createBatchRpc(
  accountId: string,
  batchUrls: string[],
): Promise<{ batchId: string; reserveMs: number; createMs: number }> {
  const reserve = await timed(
    async () =>
      await accountStub(accountId).reserveBatch({
        output: "json",
        total: batchUrls.length,
        amount: batchUrls.length * 2,
        wantedSlots: Math.min(batchUrls.length, 5),
        maxActiveBatches: 1_000_000,
        idempotencyKey: null,
        requestHash: null,
      }),
  );
  const r = reserve.value;
  if (!r.ok) throw new Error(`reserve refused: ${r.message}`);
  const create = await timed(
    async () =>
      await batchStub(r.batchId).create({
        batchId: r.batchId,
        accountId,
        holdKey: r.holdKey,
        urls: batchUrls,
        output: "json",
        selectors: null,
        maxConcurrency: 5,
        creditsPerItem: 2,
        slotsGranted: r.slotsGranted,
      }),
  );
  if (!create.value.ok) throw new Error(`create refused: ${create.value.message}`);
  return { batchId: r.batchId, reserveMs: reserve.ms, createMs: create.ms };
}

export function runInBatch<R>(
  batchId: string,
  fn: (o: BatchObject, state: DurableObjectState) => R | Promise<R>,
): Promise<R> {
  return runInDurableObject(batchStub(batchId), fn);
}

export async function itemIdsOf(batchId: string): Promise<string[]> {
  return runInBatch(batchId, (_o, s) =>
    s.storage.sql
      .exec<{ id: string }>("SELECT id FROM items ORDER BY idx")
      .toArray()
      .map((r) => r.id),
  );
}

export async function databaseSize(batchId: string): Promise<number> {
  return runInBatch(batchId, (_o, s) => s.storage.sql.databaseSize);
}

export async function ledgerRows(accountId: string, kind: string): Promise<number> {
  return runInDurableObject(
    accountStub(accountId),
    (_o: AccountObject, s) =>
      s.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM ledger WHERE kind = ?", kind).one().n,
  );
}

// ---- probes ---------------------------------------------------------------------------------

/** What a batch object sent its account object. The test and the objects share one isolate, so the test reads it live. */
export interface AccountCalls {
  calls: number;
  events: number;
  byKind: Record<string, number>;
  ms: number;
}

/** Wraps the live BatchObject's `accountStub` (a field for this purpose) to count applyBatchEvents calls and events. */
export async function watchAccountCalls(
  batchId: string,
  counts: AccountCalls = { calls: 0, events: 0, byKind: {}, ms: 0 },
): Promise<AccountCalls> {
  await runInBatch(batchId, (o) => {
    const real = o.accountStub;
    o.accountStub = (id) =>
      new Proxy(real(id), {
        get(target, prop) {
          if (prop !== "applyBatchEvents") return Reflect.get(target, prop);
          return async (batch: string, events: AccountEvent[]) => {
            counts.calls++;
            counts.events += events.length;
            for (const e of events) counts.byKind[e.kind] = (counts.byKind[e.kind] ?? 0) + 1;
            const t0 = performance.now();
            try {
              return await target.applyBatchEvents(batch, events);
            } finally {
              counts.ms += performance.now() - t0;
            }
          };
        },
      });
  });
  return counts;
}

export interface SqlCounts {
  statements: number;
  /** Rows handed to JavaScript (toArray), in all and by the largest single statement. */
  rowsToJs: number;
  maxRowsToJs: number;
  rowsRead: number;
  rowsWritten: number;
  /** The statements that read the most rows, for the scaling notes. */
  top: { query: string; runs: number; rowsRead: number; rowsWritten: number }[];
}

/**
 * Counts the SQL an object runs from now until `stop()`, by wrapping `exec` on its
 * SqlStorage (the objects and their outboxes share that one instance). This is how the
 * bench checks that a cancel never hands every item to JavaScript, and finds the
 * statements that make a call cost more than it should.
 */
export function startSqlProbe(sql: SqlStorage): { stop(): SqlCounts } {
  const counts: SqlCounts = { statements: 0, rowsToJs: 0, maxRowsToJs: 0, rowsRead: 0, rowsWritten: 0, top: [] };
  const cursors: { query: string; cursor: SqlStorageCursor<Record<string, SqlStorageValue>> }[] = [];
  const target = sql as unknown as {
    exec: (query: string, ...binds: SqlStorageValue[]) => SqlStorageCursor<Record<string, SqlStorageValue>>;
  };
  const real = target.exec;
  target.exec = function (this: SqlStorage, query: string, ...binds: SqlStorageValue[]) {
    counts.statements++;
    const cursor = real.call(this, query, ...binds);
    cursors.push({ query, cursor });
    const toArray = cursor.toArray.bind(cursor);
    cursor.toArray = () => {
      const rows = toArray();
      counts.rowsToJs += rows.length;
      counts.maxRowsToJs = Math.max(counts.maxRowsToJs, rows.length);
      return rows;
    };
    return cursor;
  };
  return {
    stop() {
      target.exec = real;
      const byQuery = new Map<string, { query: string; runs: number; rowsRead: number; rowsWritten: number }>();
      for (const { query, cursor } of cursors) {
        const key = query.replace(/\s+/g, " ").trim().slice(0, 90);
        const entry = byQuery.get(key) ?? { query: key, runs: 0, rowsRead: 0, rowsWritten: 0 };
        entry.runs++;
        entry.rowsRead += cursor.rowsRead;
        entry.rowsWritten += cursor.rowsWritten;
        byQuery.set(key, entry);
        counts.rowsRead += cursor.rowsRead;
        counts.rowsWritten += cursor.rowsWritten;
      }
      counts.top = [...byQuery.values()].sort((a, b) => b.rowsRead - a.rowsRead).slice(0, 5);
      return counts;
    },
  };
}

/** `startSqlProbe` around one call. */
export async function probeSql<R>(sql: SqlStorage, fn: () => Promise<R> | R): Promise<{ value: R; sql: SqlCounts }> {
  const probe = startSqlProbe(sql);
  let counts: SqlCounts | undefined;
  try {
    const value = await fn();
    counts = probe.stop();
    return { value, sql: counts };
  } finally {
    if (!counts) probe.stop();
  }
}

/** The SqlStorage a BatchObject or AccountObject holds (private in TypeScript; the bench reads it to probe). */
export function sqlOf(o: BatchObject | AccountObject): SqlStorage {
  return Reflect.get(o, "sql") as SqlStorage;
}
