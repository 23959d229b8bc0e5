/**
 * Reads of a batch cost one object call, the batch object's: it checks the key from its
 * copy of the key's validity (src/batch/key-copies.ts), lent by the account the first time,
 * and dropped by the account's push when the key ends. Nothing weaker than before: a key
 * revoked (or expired, or its account closed) a moment earlier is refused, also by a batch
 * object that had the copy; a foreign batch is still 404; a revoke waits for every copy.
 */
import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Env } from "../../src/env";
import { accountStub, adminHeaders, call, callJson, keyHeaders, newAccount, newBatch, runInBatch } from "../helpers";
import { finishedBatch } from "../ops/support";
import { countAccountCalls } from "./account-calls";
import { closeLiveAfterEach, openLive, within } from "./live-support";
import { addKey, expectError, fillKeyCopies, getJson, revokeKey } from "./support";

closeLiveAfterEach();

const status = (key: string, batchId: string) => getJson(`/api/batch/scrape/${batchId}`, key);

/** The batch object's key_copies rows (of one key). */
function batchCopies(batchId: string, keyId?: string) {
  return runInBatch(batchId, (_o, state) =>
    state.storage.sql
      .exec("SELECT key_id, key_hash IS NOT NULL AS has_hash, ended FROM key_copies")
      .toArray()
      .filter((r) => keyId === undefined || r.key_id === keyId),
  );
}

/** The account's key_copies rows of `keyId`. */
function accountCopies(accountId: string, keyId: string) {
  return runInDurableObject(accountStub(accountId), (_o, state) =>
    state.storage.sql
      .exec<{ batch_id: string; drop_at: number | null }>(
        "SELECT batch_id, drop_at FROM key_copies WHERE key_id = ?",
        keyId,
      )
      .toArray(),
  );
}

describe("a read costs no account-object call once the batch holds the key", () => {
  it("status, item pages, a result, SerpWow's batch and a live view: 0 account calls on the warm path", async () => {
    const { apiKey: owner, accountId } = await newAccount(100);
    const { batchId, itemIds } = await finishedBatch(owner, 3);
    const { apiKey, keyId } = await addKey(accountId);

    // The first read of this batch with this key: the batch asks the account once, and keeps a copy.
    const first = await countAccountCalls(() => status(apiKey, batchId));
    expect(first.value.status).toBe(200);
    expect(first.calls).toEqual(["lendKeyCopy"]);
    expect(await accountCopies(accountId, keyId)).toEqual([{ batch_id: batchId, drop_at: null }]);
    expect(await batchCopies(batchId, keyId)).toEqual([{ key_id: keyId, has_hash: 1, ended: null }]);

    const warm = await countAccountCalls(async () => {
      const reads = [
        await status(apiKey, batchId),
        await getJson(`/api/batch/scrape/${batchId}?limit=1&cursor=1`, apiKey),
        await getJson(`/api/batch/scrape/${batchId}/items/${itemIds[1]}/result`, apiKey),
        await callJson(`/live/batches/${batchId}?api_key=${encodeURIComponent(apiKey)}`),
        await callJson(`/api/batch/scrape/${batchId}`, { headers: { authorization: `Bearer ${apiKey}` } }),
      ];
      const live = await openLive(batchId, apiKey);
      await live.next();
      return reads;
    });
    expect(warm.value.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(warm.value[1]!.body.items).toHaveLength(1);
    expect(warm.value[2]!.body).toEqual({ i: 1 });
    expect(warm.calls).toEqual([]);

    // HEAD takes the same path: the status without the body, still no account call.
    const head = await countAccountCalls(async () => {
      const res = await call(`/api/batch/scrape/${batchId}`, { method: "HEAD", headers: { "x-api-key": apiKey } });
      return { status: res.status, body: await res.text() };
    });
    expect(head.value).toEqual({ status: 200, body: "" });
    expect(head.calls).toEqual([]);
  });

  it("100 status reads: 0 account calls, and the same answers as the account path", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 2);
    await status(apiKey, batchId);
    const { value, calls } = await countAccountCalls(async () => {
      const out = [];
      for (let i = 0; i < 100; i++) out.push(await status(apiKey, batchId));
      return out;
    });
    expect(calls).toEqual([]);
    expect(new Set(value.map((r) => r.status))).toEqual(new Set([200]));
    expect(value[99]!.body).toMatchObject({ batchId, pendingCount: 2 });
  });

  it("writes and lists still go through the account (creates reserve there)", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 2);
    const { calls } = await countAccountCalls(() =>
      callJson(`/api/batch/scrape/${batchId}`, { method: "DELETE", headers: keyHeaders(apiKey) }),
    );
    expect(calls[0]).toBe("authenticate");
  });
});

describe("a key's end stops reads at once, also where a copy was kept", () => {
  it("revoked a moment earlier: refused by the batch that had the copy, and by one that never saw the key", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const key = await addKey(accountId);
    const cached = await newBatch(apiKey, 1);
    const fresh = await newBatch(apiKey, 1);
    expect((await status(key.apiKey, cached.batchId)).status).toBe(200);
    expect(await batchCopies(cached.batchId, key.keyId)).toEqual([{ key_id: key.keyId, has_hash: 1, ended: null }]);

    await revokeKey(accountId, key.keyId);
    const { value, calls } = await countAccountCalls(() => status(key.apiKey, cached.batchId));
    expectError(value, 403, "INVALID_API_KEY");
    expect(calls).toEqual([]); // the batch knew: the revoke pushed the end before it answered
    expect(await batchCopies(cached.batchId, key.keyId)).toEqual([
      { key_id: key.keyId, has_hash: 0, ended: "revoked" },
    ]);
    expect(await accountCopies(accountId, key.keyId)).toEqual([]);
    expectError(await status(key.apiKey, fresh.batchId), 403, "INVALID_API_KEY");
    expectError(
      await getJson(`/api/batch/scrape/${cached.batchId}/items/${crypto.randomUUID()}/result`, key.apiKey),
      403,
      "INVALID_API_KEY",
    );
    const serp = await callJson(`/live/batches/${cached.batchId}?api_key=${encodeURIComponent(key.apiKey)}`);
    expect(serp.status).toBe(403);
    // The other key of the account is untouched.
    expect((await status(apiKey, cached.batchId)).status).toBe(200);
  });

  it("a copy pushed to an evicted batch object: the push wakes it, and the end is kept in its storage", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const key = await addKey(accountId);
    const { batchId } = await newBatch(apiKey, 1);
    expect((await status(key.apiKey, batchId)).status).toBe(200);
    await evictDurableObject(env.BATCH.getByName(batchId));
    await revokeKey(accountId, key.keyId);
    await evictDurableObject(env.BATCH.getByName(batchId));
    expectError(await status(key.apiKey, batchId), 403, "INVALID_API_KEY");
  });

  it("expired: the batch checks the copy's expiry itself, with no push and no account call", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const key = await addKey(accountId, { expiresAt: new Date(Date.now() + 3_600_000).toISOString() });
    const { batchId } = await newBatch(apiKey, 1);
    expect((await status(key.apiKey, batchId)).status).toBe(200);
    // The clock passes the expiry, for the account and the copy alike.
    const past = Date.now() - 1000;
    await runInDurableObject(accountStub(accountId), (_o, state) => {
      state.storage.sql.exec("UPDATE api_keys SET expires_at = ? WHERE key_id = ?", past, key.keyId);
    });
    await runInBatch(batchId, (_o, state) => {
      state.storage.sql.exec("UPDATE key_copies SET expires_at = ? WHERE key_id = ?", past, key.keyId);
    });
    const { value, calls } = await countAccountCalls(() => status(key.apiKey, batchId));
    expectError(value, 403, "INVALID_API_KEY");
    expect(calls).toEqual([]);
    // The account's alarm pushes the expiry (for live views), and forgets the copy once confirmed.
    expect(await runDurableObjectAlarm(accountStub(accountId))).toBe(true);
    expect(await accountCopies(accountId, key.keyId)).toEqual([]);
    expect(await batchCopies(batchId, key.keyId)).toEqual([{ key_id: key.keyId, has_hash: 0, ended: "expired" }]);
  });

  it("account closed: every key refused by batches holding copies, and live views closed", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const other = await addKey(accountId);
    const a = await newBatch(apiKey, 1);
    const b = await newBatch(apiKey, 1);
    expect((await status(apiKey, a.batchId)).status).toBe(200);
    expect((await status(other.apiKey, b.batchId)).status).toBe(200);
    const live = await openLive(b.batchId, other.apiKey);
    await live.next();
    const closed = await callJson(`/admin/accounts/${accountId}`, { method: "DELETE", headers: adminHeaders });
    expect(closed.status).toBe(200);
    expect(await within(live.closed)).toEqual({ code: 4001, reason: "API key revoked" });
    for (const [k, id] of [
      [apiKey, a.batchId],
      [other.apiKey, b.batchId],
      [apiKey, b.batchId],
    ] as const) {
      expectError(await status(k, id), 403, "INVALID_API_KEY");
    }
  });

  it("cross-account: another account's batch is 404 for a valid key, and a bad key is still 403", async () => {
    const a = await newAccount(100);
    const b = await newAccount(100);
    const { batchId } = await newBatch(a.apiKey, 1);
    expect((await status(a.apiKey, batchId)).status).toBe(200);
    expectError(await status(b.apiKey, batchId), 404, "NOT_FOUND");
    expectError(await getJson(`/api/batch/scrape/${crypto.randomUUID()}`, b.apiKey), 404, "NOT_FOUND");
    expectError(await getJson("/api/batch/scrape/not-a-uuid", b.apiKey), 404, "NOT_FOUND");
    expect((await callJson(`/live/batches/${batchId}?api_key=${encodeURIComponent(b.apiKey)}`)).status).toBe(404);
    // B's key is never lent to A's batch object.
    expect(await batchCopies(batchId)).toEqual([{ key_id: a.keyId, has_hash: 1, ended: null }]);
    const dead = await addKey(b.accountId);
    await revokeKey(b.accountId, dead.keyId);
    expectError(await status(dead.apiKey, batchId), 403, "INVALID_API_KEY");
    expectError(await getJson("/api/batch/scrape/not-a-uuid", dead.apiKey), 403, "INVALID_API_KEY");
  });
});

describe("revoke against reads in flight", () => {
  it("an end that reaches the batch while its lend answer is on the way wins: the read is refused, no copy kept", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const key = await addKey(accountId);
    const { batchId } = await newBatch(apiKey, 1);
    // The batch's next lend answer reaches it only after the account's push of the key's end has.
    await runInBatch(batchId, (o) => {
      const proto = Object.getPrototypeOf(o) as { dropKeyCopies: (...a: unknown[]) => number };
      const realDrop = proto.dropKeyCopies;
      let dropCame!: () => void;
      const dropArrived = new Promise<void>((resolve) => (dropCame = resolve));
      proto.dropKeyCopies = function (this: unknown, ...args: unknown[]) {
        proto.dropKeyCopies = realDrop;
        dropCame();
        return realDrop.apply(this, args);
      };
      const realStub = o.accountStub;
      o.accountStub = (id) =>
        new Proxy(realStub(id), {
          get: (target, prop) => {
            if (prop !== "lendKeyCopy") return Reflect.get(target, prop);
            return async (...args: Parameters<typeof target.lendKeyCopy>) => {
              o.accountStub = realStub;
              const answer = await target.lendKeyCopy(...args);
              await dropArrived;
              return answer;
            };
          },
        });
    });
    const pending = status(key.apiKey, batchId);
    await expect.poll(async () => (await accountCopies(accountId, key.keyId)).length).toBe(1); // lent
    await revokeKey(accountId, key.keyId);
    expectError(await pending, 403, "INVALID_API_KEY");
    expect(await batchCopies(batchId, key.keyId)).toEqual([{ key_id: key.keyId, has_hash: 0, ended: "revoked" }]);
  });

  it("reads racing a revoke: each is answered 200 or 403, and every read sent after the revoke answered is 403", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const key = await addKey(accountId);
    const batches = [await newBatch(apiKey, 1), await newBatch(apiKey, 1), await newBatch(apiKey, 1)];
    await status(key.apiKey, batches[0]!.batchId); // one warm, two cold
    const inFlight: Promise<{ status: number }>[] = [];
    let revoked: Promise<void> | undefined;
    for (let i = 0; i < 60; i++) {
      if (i === 30) revoked = revokeKey(accountId, key.keyId);
      inFlight.push(status(key.apiKey, batches[i % 3]!.batchId));
      if (i % 7 === 0) await new Promise((r) => setTimeout(r, 0));
    }
    await revoked;
    const after = await Promise.all(batches.map((b) => status(key.apiKey, b.batchId)));
    for (const r of after) expectError(r as never, 403, "INVALID_API_KEY");
    const answers = (await Promise.all(inFlight)).map((r) => r.status);
    expect(answers.every((s) => s === 200 || s === 403)).toBe(true);
    expect(answers.slice(0, 5)).toContain(200);
  });

  it("a batch that does not confirm the drop: the revoke answers 503 REVOCATION_PENDING, and succeeds once pushed", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const key = await addKey(accountId);
    const { batchId } = await newBatch(apiKey, 1);
    expect((await status(key.apiKey, batchId)).status).toBe(200);
    // The account's pushes fail (its env is memory: an eviction restores it).
    await runInDurableObject(accountStub(accountId), (o) => {
      const real = (o as unknown as { env: Env }).env;
      const BATCH = {
        getByName: (name: string) => ({
          dropKeyCopies: () => Promise.reject(new Error("injected: the batch object did not answer")),
          closeLiveViews: (...a: unknown[]) =>
            (real.BATCH.getByName(name).closeLiveViews as (...x: unknown[]) => Promise<number>)(...a),
        }),
      };
      Object.defineProperty(o, "env", { value: { ...real, BATCH }, configurable: true });
    });
    const path = `/admin/accounts/${accountId}/keys/${key.keyId}`;
    const pending = await callJson(path, { method: "DELETE", headers: adminHeaders });
    expectError(pending, 503, "REVOCATION_PENDING");
    // Revocation is not done: the account refuses the key, the batch object still holds its copy.
    expectError(await callJson("/api/credits", { headers: keyHeaders(key.apiKey) }), 403, "INVALID_API_KEY");
    expect(await accountCopies(accountId, key.keyId)).toEqual([{ batch_id: batchId, drop_at: expect.any(Number) }]);
    const alarm = await runInDurableObject(accountStub(accountId), (_o, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();

    await evictDurableObject(accountStub(accountId)); // the fault lived in memory: gone with it
    // Either the alarm or a repeated revoke pushes again; here the alarm, once due.
    await runInDurableObject(accountStub(accountId), (_o, state) => {
      state.storage.sql.exec("UPDATE key_copies SET drop_at = ? WHERE key_id = ?", Date.now() - 1, key.keyId);
    });
    expect(await runDurableObjectAlarm(accountStub(accountId))).toBe(true);
    expect(await accountCopies(accountId, key.keyId)).toEqual([]);
    expectError(await status(key.apiKey, batchId), 403, "INVALID_API_KEY");
    const done = await callJson(path, { method: "DELETE", headers: adminHeaders });
    expect(done.status).toBe(200);
  });
});

describe("bounded", () => {
  it("past MAX_KEY_COPIES the account lends no copy: reads still work, through the account each time", async () => {
    const { apiKey: owner, accountId } = await newAccount(100);
    const { batchId } = await newBatch(owner, 1);
    const { apiKey, keyId } = await addKey(accountId);
    await fillKeyCopies(accountId, keyId);
    for (let i = 0; i < 2; i++) {
      const { value, calls } = await countAccountCalls(() => status(apiKey, batchId));
      expect(value.status).toBe(200);
      expect(calls).toEqual(["lendKeyCopy"]);
    }
    expect(await batchCopies(batchId, keyId)).toEqual([]);
    expect((await accountCopies(accountId, keyId)).filter((c) => c.batch_id === batchId)).toEqual([]);
  });
});
