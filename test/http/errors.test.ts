import { describe, expect, it } from "vitest";
import { adminHeaders, call, callJson, getBatch, getCredits, keyHeaders, newAccount, newBatch, urls } from "../helpers";
import { expectError, expectNoStack, listBatches, sansRequestId } from "./support";

const MAX_BODY_BYTES = 3 * 1024 * 1024;

/** A JSON body of exactly `bytes` bytes: `{"urls":["https://example.com/aaaa…"]}`. */
function jsonOfSize(bytes: number): string {
  const head = '{"urls":["https://example.com/';
  const tail = '"]}';
  const body = head + "a".repeat(bytes - head.length - tail.length) + tail;
  expect(new TextEncoder().encode(body).byteLength).toBe(bytes);
  return body;
}

describe("unknown routes: 404 NOT_FOUND", () => {
  it.each([
    ["GET", "/nope", {}],
    ["GET", "/api/nope", "key"],
    ["POST", "/api/batch/scrape/x/y/z", "key"],
    ["GET", "/api/credits/ledger/extra", "key"],
    ["GET", "/admin/nope", adminHeaders],
    ["GET", "/api", "key"],
  ] as const)("%s %s answers 404 NOT_FOUND in the envelope", async (method, path, auth) => {
    const headers = auth === "key" ? keyHeaders((await newAccount(1)).apiKey) : auth;
    expectError(await callJson(path, { method, headers }), 404, "NOT_FOUND");
  });
});

describe("batch ids that are unknown, malformed or another account's: 404 NOT_FOUND", () => {
  const routes = [
    ["GET", (id: string) => `/api/batch/scrape/${id}`],
    ["DELETE", (id: string) => `/api/batch/scrape/${id}`],
    ["POST", (id: string) => `/api/batch/scrape/${id}/retry`],
  ] as const;

  it.each(routes)("%s answers the same 404 body for all three, and leaves the batch alone", async (method, path) => {
    const owner = await newAccount(100);
    const other = await newAccount(100);
    const { batchId } = await newBatch(owner.apiKey, 2);
    const ask = (id: string) => callJson(path(id), { method, headers: keyHeaders(other.apiKey) });
    const unknown = await ask(crypto.randomUUID());
    const malformed = await ask("12345");
    const traversal = await ask("..%2F..%2Fadmin");
    const foreign = await ask(batchId);
    for (const r of [unknown, malformed, traversal, foreign]) expectError(r, 404, "NOT_FOUND");
    expect(sansRequestId(malformed.body)).toEqual(sansRequestId(unknown.body));
    expect(sansRequestId(traversal.body)).toEqual(sansRequestId(unknown.body));
    expect(sansRequestId(foreign.body)).toEqual(sansRequestId(unknown.body));
    // The owner's batch is untouched (a foreign DELETE did not cancel it).
    expect((await getBatch(owner.apiKey, batchId)).body).toMatchObject({
      status: "pending",
      pendingCount: 2,
      cancelledCount: 0,
    });
    expect(await getCredits(owner.apiKey)).toMatchObject({ balance: 96, reserved: 4, refunded: 0 });
    expect(await getCredits(other.apiKey)).toMatchObject({ balance: 100, reserved: 0 });
  });
});

describe("wrong method on a known path: 405 METHOD_NOT_ALLOWED with Allow", () => {
  it.each([
    ["PUT", "/api/batch/scrape", ["GET", "POST"]],
    ["PATCH", "/api/batch/scrape", ["GET", "POST"]],
    ["DELETE", "/api/batch/scrape", ["GET", "POST"]],
    ["PATCH", "/api/credits", ["GET"]],
    ["POST", "/api/credits", ["GET"]],
    ["DELETE", "/api/credits/ledger", ["GET"]],
    ["PUT", "/api/batch/scrape/ID", ["DELETE", "GET"]],
    ["POST", "/api/batch/scrape/ID", ["DELETE", "GET"]],
    ["GET", "/api/batch/scrape/ID/retry", ["POST"]],
  ] as const)("%s %s answers 405 with Allow: %j", async (method, rawPath, allowed) => {
    const { apiKey } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 1);
    const path = rawPath.replace("ID", batchId);
    const r = await callJson(path, { method, headers: keyHeaders(apiKey), body: method === "GET" ? undefined : "{}" });
    expectError(r, 405, "METHOD_NOT_ALLOWED");
    const allow = (r.res.headers.get("allow") ?? "")
      .split(/\s*,\s*/)
      .filter(Boolean)
      .sort();
    expect(allow).toEqual([...allowed]);
    // Nothing happened: the batch is still pending and nothing more was reserved.
    expect((await getBatch(apiKey, batchId)).body.status).toBe("pending");
    expect(await getCredits(apiKey)).toMatchObject({ balance: 98, reserved: 2 });
  });

  it.each([
    ["GET", "/admin/accounts", ["POST"]],
    ["PUT", "/admin/accounts/ACCOUNT", ["DELETE", "GET"]],
    ["GET", "/admin/accounts/ACCOUNT/credits", ["POST"]],
    ["GET", "/admin/accounts/ACCOUNT/keys", ["POST"]],
    ["GET", "/admin/accounts/ACCOUNT/keys/KEY", ["DELETE"]],
    ["POST", "/healthz", ["GET"]],
    ["POST", "/openapi.json", ["GET"]],
  ] as const)("%s %s answers 405 with Allow: %j", async (method, rawPath, allowed) => {
    const { accountId, keyId } = await newAccount(1);
    const path = rawPath.replace("ACCOUNT", accountId).replace("KEY", keyId);
    const r = await callJson(path, { method, headers: adminHeaders, body: method === "GET" ? undefined : "{}" });
    expectError(r, 405, "METHOD_NOT_ALLOWED");
    const allow = (r.res.headers.get("allow") ?? "")
      .split(/\s*,\s*/)
      .filter(Boolean)
      .sort();
    expect(allow).toEqual([...allowed]);
  });
});

describe("413 PAYLOAD_TOO_LARGE", () => {
  it("refuses a create body one byte over 3 MiB, reserving nothing", async () => {
    const { apiKey } = await newAccount(5000);
    const r = await callJson("/api/batch/scrape", {
      method: "POST",
      headers: keyHeaders(apiKey),
      body: jsonOfSize(MAX_BODY_BYTES + 1),
    });
    expectError(r, 413, "PAYLOAD_TOO_LARGE");
    expect(await getCredits(apiKey)).toEqual({ balance: 5000, reserved: 0, used: 0, refunded: 0, granted: 5000 });
    expect((await listBatches(apiKey)).body.pagination.total).toBe(0);
  });

  it("refuses a 4 MiB body sent as a stream without Content-Length", async () => {
    const { apiKey } = await newAccount(5000);
    const chunk = new TextEncoder().encode(jsonOfSize(MAX_BODY_BYTES + 1024 * 1024));
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < chunk.byteLength; i += 64 * 1024) controller.enqueue(chunk.slice(i, i + 64 * 1024));
        controller.close();
      },
    });
    const r = await callJson("/api/batch/scrape", { method: "POST", headers: keyHeaders(apiKey), body: stream });
    expectError(r, 413, "PAYLOAD_TOO_LARGE");
    expect((await getCredits(apiKey)).reserved).toBe(0);
  });

  it("refuses a huge admin body too", async () => {
    const r = await callJson("/admin/accounts", {
      method: "POST",
      headers: adminHeaders,
      body: JSON.stringify({ name: "x".repeat(MAX_BODY_BYTES) }),
    });
    expectError(r, 413, "PAYLOAD_TOO_LARGE");
  });

  it("accepts a body just under the limit: 1000 URLs of 2048 characters (about 2 MB)", async () => {
    const { apiKey } = await newAccount(2000);
    const list = urls(1000).map((u) => `${u}/${"b".repeat(2048 - u.length - 1)}`);
    expect(list.every((u) => u.length === 2048)).toBe(true);
    const body = JSON.stringify({ urls: list });
    expect(body.length).toBeLessThan(MAX_BODY_BYTES);
    const r = await callJson("/api/batch/scrape", { method: "POST", headers: keyHeaders(apiKey), body });
    expect(r.status).toBe(202);
    expect(r.body.total).toBe(1000);
  });
});

describe("415 UNSUPPORTED_MEDIA_TYPE", () => {
  it.each([
    ["text/plain", JSON.stringify({ urls: ["https://example.com/"] })],
    ["application/x-www-form-urlencoded", "urls=https%3A%2F%2Fexample.com%2F"],
    [
      "multipart/form-data; boundary=x",
      '--x\r\nContent-Disposition: form-data; name="urls"\r\n\r\nhttps://example.com/\r\n--x--\r\n',
    ],
    ["application/xml", "<urls><url>https://example.com/</url></urls>"],
    ["application/jsonp", JSON.stringify({ urls: ["https://example.com/"] })],
  ])("refuses a create body of type %s, creating nothing", async (type, body) => {
    const { apiKey } = await newAccount(100);
    const r = await callJson("/api/batch/scrape", {
      method: "POST",
      headers: { "x-api-key": apiKey, "content-type": type },
      body,
    });
    expectError(r, 415, "UNSUPPORTED_MEDIA_TYPE");
    expect((await getCredits(apiKey)).reserved).toBe(0);
    expect((await listBatches(apiKey)).body.pagination.total).toBe(0);
  });

  it("refuses a body with no content type", async () => {
    const { apiKey } = await newAccount(100);
    const init = {
      method: "POST",
      headers: { "x-api-key": apiKey },
      body: new TextEncoder().encode(JSON.stringify({ urls: ["https://example.com/"] })),
    };
    // A byte body gets no content type of its own.
    expect(new Request("https://api.test/", init).headers.get("content-type")).toBeNull();
    expectError(await callJson("/api/batch/scrape", init), 415, "UNSUPPORTED_MEDIA_TYPE");
    expect((await getCredits(apiKey)).reserved).toBe(0);
  });

  it("refuses a text/plain admin body", async () => {
    const { accountId, apiKey } = await newAccount(10);
    const r = await callJson(`/admin/accounts/${accountId}/credits`, {
      method: "POST",
      headers: { authorization: adminHeaders.authorization, "content-type": "text/plain" },
      body: JSON.stringify({ amount: 5 }),
    });
    expectError(r, 415, "UNSUPPORTED_MEDIA_TYPE");
    expect((await getCredits(apiKey)).balance).toBe(10);
  });

  it("accepts application/json with a charset", async () => {
    const { apiKey } = await newAccount(100);
    const r = await callJson("/api/batch/scrape", {
      method: "POST",
      headers: { "x-api-key": apiKey, "content-type": "application/json; charset=utf-8" },
      body: JSON.stringify({ urls: ["https://example.com/"] }),
    });
    expect(r.status).toBe(202);
  });
});

describe("400 INVALID_JSON", () => {
  it.each([
    ["a truncated object", '{"urls": ["https://example.com/"'],
    ["trailing garbage", '{"urls": ["https://example.com/"]} x'],
    ["single quotes", "{'urls': ['https://example.com/']}"],
    ["a trailing comma", '{"urls": ["https://example.com/"],}'],
    ["not JSON at all", "urls=https://example.com/"],
  ])("refuses %s on create, reserving nothing", async (_label, body) => {
    const { apiKey } = await newAccount(100);
    const r = await callJson("/api/batch/scrape", { method: "POST", headers: keyHeaders(apiKey), body });
    expectError(r, 400, "INVALID_JSON");
    expect(await getCredits(apiKey)).toEqual({ balance: 100, reserved: 0, used: 0, refunded: 0, granted: 100 });
  });

  it("refuses an empty body sent as JSON", async () => {
    const { apiKey } = await newAccount(100);
    const r = await callJson("/api/batch/scrape", { method: "POST", headers: keyHeaders(apiKey), body: "" });
    expectError(r, 400, "INVALID_JSON");
    expect((await getCredits(apiKey)).reserved).toBe(0);
  });

  it.each([
    ["POST /admin/accounts", () => "/admin/accounts"],
    ["POST /admin/accounts/:id/credits", (id: string) => `/admin/accounts/${id}/credits`],
    ["POST /admin/accounts/:id/keys", (id: string) => `/admin/accounts/${id}/keys`],
  ])("refuses malformed JSON on %s", async (_label, path) => {
    const { accountId, apiKey } = await newAccount(10);
    const r = await callJson(path(accountId), { method: "POST", headers: adminHeaders, body: '{"amount": 5' });
    expectError(r, 400, "INVALID_JSON");
    expect((await getCredits(apiKey)).balance).toBe(10);
  });

  it("does not echo the bad input or parser internals", async () => {
    const { apiKey } = await newAccount(100);
    const r = await callJson("/api/batch/scrape", {
      method: "POST",
      headers: keyHeaders(apiKey),
      body: '{"urls": <script>',
    });
    expectError(r, 400, "INVALID_JSON");
    expect(r.body.message).not.toContain("<script>");
  });
});

describe("the error envelope", () => {
  it("is exactly { status, message, code, requestId } with a JSON content type on every kind of error", async () => {
    const { apiKey } = await newAccount(1);
    const answers = await Promise.all([
      callJson("/api/credits"),
      callJson("/api/credits", { headers: { "x-api-key": "bad" } }),
      callJson("/admin/accounts", { method: "POST" }),
      callJson(`/api/batch/scrape/${crypto.randomUUID()}`, { headers: keyHeaders(apiKey) }),
      callJson("/api/credits", { method: "PATCH", headers: keyHeaders(apiKey) }),
      callJson("/api/batch/scrape", { method: "POST", headers: keyHeaders(apiKey), body: "{" }),
      callJson("/api/batch/scrape", {
        method: "POST",
        headers: keyHeaders(apiKey),
        body: JSON.stringify({ urls: [] }),
      }),
      callJson("/api/batch/scrape", {
        method: "POST",
        headers: keyHeaders(apiKey),
        body: JSON.stringify({ urls: urls(1) }),
      }),
    ]);
    expect(answers.map((a) => [a.status, a.body.code])).toEqual([
      [401, "MISSING_API_KEY"],
      [403, "INVALID_API_KEY"],
      [401, "UNAUTHORIZED"],
      [404, "NOT_FOUND"],
      [405, "METHOD_NOT_ALLOWED"],
      [400, "INVALID_JSON"],
      [400, "VALIDATION_ERROR"],
      [403, "INSUFFICIENT_CREDITS"],
    ]);
    for (const a of answers) expect(Object.keys(a.body).sort()).toEqual(["code", "message", "requestId", "status"]);
    for (const a of answers) expectError(a, a.status, a.body.code);
  });

  it("never carries a stack trace, even for hostile input", async () => {
    const { apiKey } = await newAccount(100);
    const hostile = [
      '{"urls": [{"toString": "x"}]}',
      '{"urls": ["https://example.com/"], "__proto__": {"admin": true}}',
      '{"urls": ["https://example.com/"], "constructor": {"prototype": {}}}',
      JSON.stringify({ urls: ["https://example.com/".padEnd(5000, "a")] }),
      '{"urls": ["https://[::1"]}',
      '{"urls": ["https://example.com/"], "maxConcurrency": 1e400}',
    ];
    for (const body of hostile) {
      const res = await call("/api/batch/scrape", { method: "POST", headers: keyHeaders(apiKey), body });
      const text = await res.text();
      expect(res.status).toBe(400);
      expectNoStack(text);
      expect(JSON.parse(text)).toMatchObject({ status: "error", code: "VALIDATION_ERROR" });
    }
  });

  it("sends WWW-Authenticate: Bearer with an admin 401", async () => {
    const r = await callJson("/admin/accounts", { method: "POST", headers: { authorization: "Bearer nope" } });
    expectError(r, 401, "UNAUTHORIZED");
    expect(r.res.headers.get("www-authenticate")).toBe("Bearer");
  });
});
