/**
 * Live batch views (GET /api/batch/scrape/{batchId}/live) and the dashboard page.
 * The socket is opened the way a browser does: the key as the subprotocol after "batch-live".
 */
import { describe, expect, it } from "vitest";
import { MAX_LIVE_SOCKETS } from "../../src/batch/live";
import { adminHeaders, batchStub, call, callJson, keyHeaders, newAccount, newBatch, runInBatch } from "../helpers";
import { asAnswer, browserHeaders, closeLiveAfterEach, liveRequest, openLive, watchLive, within } from "./live-support";
import { addKey, expectError, revokeKey } from "./support";

closeLiveAfterEach();

describe("GET /api/batch/scrape/{batchId}/live", () => {
  it("opens with the key in Sec-WebSocket-Protocol, selects batch-live, and sends the batch first", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 3);
    const live = await openLive(batchId, apiKey);
    expect(live.res.headers.get("sec-websocket-protocol")).toBe("batch-live");
    // The key is echoed nowhere.
    for (const [, value] of live.res.headers) expect(value).not.toContain(apiKey);
    const first = await live.next();
    expect(first).toEqual({
      type: "batch",
      batch: expect.objectContaining({ batchId, status: "pending", totalUrls: 3, pendingCount: 3 }),
    });
    expect(first.item).toBeUndefined();
  });

  it("pushes every transition: a start, a completion with its item, and a cancel", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 4);
    const live = await openLive(batchId, apiKey);
    await live.next(); // the batch as it was

    const lease = await batchStub(batchId).startItem(itemIds[0]!);
    expect(lease.action).toBe("run");
    const started = await live.next();
    expect(started.batch).toMatchObject({ batchId, status: "running", pendingCount: 3, runningCount: 1 });

    if (lease.action !== "run") throw new Error("not started");
    await batchStub(batchId).completeItem(itemIds[0]!, lease.attempt, { title: "done" });
    const completed = await live.next((m) => m.batch.completedCount === 1);
    expect(completed.batch).toMatchObject({ runningCount: 0, completedCount: 1, creditsUsed: 2 });
    expect(completed.item).toMatchObject({ uuid: itemIds[0], status: "completed", creditsUsed: 2 });

    const cancel = await callJson(`/api/batch/scrape/${batchId}`, { method: "DELETE", headers: keyHeaders(apiKey) });
    expect(cancel.body).toEqual({ status: "cancelled", cancelledItems: 3, creditsRefunded: 6 });
    const cancelled = await live.next((m) => m.batch.status === "cancelled");
    expect(cancelled.batch).toMatchObject({
      pendingCount: 0,
      cancelledCount: 3,
      completedCount: 1,
      creditsRefunded: 6,
    });
  });

  it("sends every open socket of the batch the same transition", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 2);
    const a = await openLive(batchId, apiKey);
    const b = await openLive(batchId, apiKey);
    await a.next();
    await b.next();
    await batchStub(batchId).startItem(itemIds[1]!);
    expect((await a.next()).batch.runningCount).toBe(1);
    expect((await b.next()).batch.runningCount).toBe(1);
  });

  it("answers ping with pong", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 1);
    const live = await openLive(batchId, apiKey);
    await live.next();
    live.ws.send("ping");
    const deadline = Date.now() + 3000;
    while (!live.raw.includes("pong") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(live.raw).toContain("pong");
  });

  it("also accepts the key as x-api-key (non-browser clients)", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 1);
    const res = await liveRequest(batchId, { upgrade: "websocket", "x-api-key": apiKey });
    expect(res.status).toBe(101);
    watchLive(res);
  });

  it("refuses a wrong key with 403 and no key with 401, in the error envelope", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 1);
    const wrong = `${apiKey.slice(0, -4)}AAAA`;
    expectError(await asAnswer(liveRequest(batchId, browserHeaders(wrong))), 403, "INVALID_API_KEY");
    expectError(
      await asAnswer(liveRequest(batchId, { upgrade: "websocket", "sec-websocket-protocol": "batch-live" })),
      401,
      "MISSING_API_KEY",
    );
    expectError(await asAnswer(liveRequest(batchId, { upgrade: "websocket" })), 401, "MISSING_API_KEY");
    // The subprotocol is read only on an upgrade.
    expectError(
      await asAnswer(liveRequest(batchId, { "sec-websocket-protocol": `batch-live, ${apiKey}` })),
      401,
      "MISSING_API_KEY",
    );
  });

  it("answers 404 for another account's batch, an unknown batch and a malformed id", async () => {
    const owner = await newAccount(100);
    const other = await newAccount(100);
    const { batchId } = await newBatch(owner.apiKey, 1);
    expectError(await asAnswer(liveRequest(batchId, browserHeaders(other.apiKey))), 404, "NOT_FOUND");
    expectError(await asAnswer(liveRequest(crypto.randomUUID(), browserHeaders(owner.apiKey))), 404, "NOT_FOUND");
    expectError(await asAnswer(liveRequest("not-a-uuid", browserHeaders(owner.apiKey))), 404, "NOT_FOUND");
  });

  it("cannot be fooled by a forged x-account-id", async () => {
    const owner = await newAccount(100);
    const other = await newAccount(100);
    const { batchId } = await newBatch(owner.apiKey, 1);
    const r = await asAnswer(
      liveRequest(batchId, { ...browserHeaders(other.apiKey), "x-account-id": owner.accountId }),
    );
    expectError(r, 404, "NOT_FOUND");
  });

  it("the batch object itself refuses a non-owner and a plain request", async () => {
    const owner = await newAccount(100);
    const other = await newAccount(100);
    const { batchId } = await newBatch(owner.apiKey, 1);
    const stub = batchStub(batchId);
    const notOwner = await stub.fetch("https://batch/live", {
      headers: { upgrade: "websocket", "x-account-id": other.accountId },
    });
    expect(notOwner.status).toBe(404);
    const anonymous = await stub.fetch("https://batch/live", { headers: { upgrade: "websocket" } });
    expect(anonymous.status).toBe(404);
    const plain = await stub.fetch("https://batch/live", { headers: { "x-account-id": owner.accountId } });
    expect(plain.status).toBe(426);
    expect(await runInBatch(batchId, (_o, state) => state.getWebSockets().length)).toBe(0);
  });

  it("answers 426 without an upgrade", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 1);
    const r = await asAnswer(liveRequest(batchId, keyHeaders(apiKey)));
    expectError(r, 426, "UPGRADE_REQUIRED");
    expect(r.res.headers.get("upgrade")).toBe("websocket");
  });

  it(`refuses more than ${MAX_LIVE_SOCKETS} sockets on one batch with 429`, async () => {
    const { apiKey } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 1);
    for (let i = 0; i < MAX_LIVE_SOCKETS; i++) {
      const res = await liveRequest(batchId, browserHeaders(apiKey));
      expect(res.status).toBe(101);
      watchLive(res);
    }
    expectError(await asAnswer(liveRequest(batchId, browserHeaders(apiKey))), 429, "TOO_MANY_CONNECTIONS");
  }, 30_000); // 100 sockets one after the other: seconds on a loaded machine

  it("tags the object's sockets with their account and their key", async () => {
    const { apiKey, accountId, keyId } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 1);
    const live = await openLive(batchId, apiKey);
    await live.next();
    const tags = await runInBatch(batchId, (_o, state) => state.getWebSockets().map((ws) => state.getTags(ws)));
    expect(tags).toEqual([[accountId, `key:${keyId}`]]);
  });
});

describe("GET /dashboard", () => {
  it("serves the page: a key field, the live protocol, no key, and a strict CSP", async () => {
    const res = await call("/dashboard");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type") ?? "").toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toMatch(/<input id="api-key" type="password"/);
    expect(html).toContain('"batch-live"');
    expect(html).toContain("sessionStorage");
    expect(html).not.toMatch(/bsk_[0-9a-f]{32}_/);
    // The key field has no name: a form submitted without the script could not put it in a URL.
    expect(html).not.toMatch(/<input[^>]*id="api-key"[^>]*name=/);
    const csp = res.headers.get("content-security-policy") ?? "";
    const nonce = /script-src 'nonce-([^']+)'/.exec(csp)?.[1];
    expect(nonce).toBeTruthy();
    expect(html).toContain(`<script nonce="${nonce}">`);
    expect(csp).toContain("form-action 'none'");
    expect(csp).toContain("default-src 'none'");
    expect(res.headers.get("referrer-policy")).toBe("no-referrer");
    expect(res.headers.get("cache-control")).toBe("no-store");
  });

  it("uses a new nonce for every response", async () => {
    const a = (await call("/dashboard")).headers.get("content-security-policy");
    const b = (await call("/dashboard")).headers.get("content-security-policy");
    expect(a).not.toBe(b);
  });

  it("GET / redirects to it", async () => {
    const res = await call("/", { redirect: "manual" });
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe("/dashboard");
  });
});

describe("the OpenAPI document", () => {
  it("documents the live route's 101 and its errors, the dashboard page and the redirect", async () => {
    const { body: doc } = await callJson("/openapi.json");
    const live = doc.paths["/api/batch/scrape/{batchId}/live"].get;
    expect(Object.keys(live.responses)).toEqual(expect.arrayContaining(["101", "401", "403", "404", "426"]));
    expect(live.security).toEqual([{ ApiKeyAuth: [] }, { ApiKeyBearer: [] }]);
    expect(Object.keys(doc.paths["/dashboard"].get.responses["200"].content)).toEqual(["text/html"]);
    expect(Object.keys(doc.paths["/"].get.responses)).toEqual(["302"]);
  });
});

describe("live views and revoked keys", () => {
  it("revoking a key closes its live views at once (code 4001); other keys' views stay open", async () => {
    const { apiKey, accountId, keyId } = await newAccount(100);
    const other = await addKey(accountId);
    const first = await newBatch(apiKey, 2);
    const second = await newBatch(apiKey, 2);
    const mine = [await openLive(first.batchId, apiKey), await openLive(second.batchId, apiKey)];
    const theirs = await openLive(first.batchId, other.apiKey);
    for (const live of [...mine, theirs]) await live.next();
    const closes = mine.map((l) => l.closed);

    await revokeKey(accountId, keyId);
    for (const closed of await within(Promise.all(closes)))
      expect(closed).toEqual({ code: 4001, reason: "API key revoked" });

    // The other key's view still receives transitions.
    expect((await batchStub(first.batchId).startItem(first.itemIds[0]!)).action).toBe("run");
    expect((await theirs.next((m) => m.batch.runningCount === 1)).batch).toMatchObject({ batchId: first.batchId });
    // And the revoked key cannot open a new one.
    expectError(await asAnswer(liveRequest(first.batchId, browserHeaders(apiKey))), 403, "INVALID_API_KEY");
  });

  it("closing the account closes every live view of it", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const other = await addKey(accountId);
    const { batchId } = await newBatch(apiKey, 2);
    const views = [await openLive(batchId, apiKey), await openLive(batchId, other.apiKey)];
    for (const live of views) await live.next();
    const closes = views.map((l) => l.closed);
    const closing = await callJson(`/admin/accounts/${accountId}`, { method: "DELETE", headers: adminHeaders });
    expect(closing.status).toBe(200);
    for (const closed of await within(Promise.all(closes))) expect(closed.code).toBe(4001);
  });
});
