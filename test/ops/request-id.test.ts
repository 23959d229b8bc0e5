import { createExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it } from "vitest";
import type { Env } from "../../src/env";
import { createApp } from "../../src/http/app";
import { adminHeaders, batchStub, call, callJson, keyHeaders, newAccount, newBatch } from "../helpers";
import { expectError, UUID_RE } from "../http/support";
import { captureLogs } from "./support";

let logs: ReturnType<typeof captureLogs> | undefined;
afterEach(() => {
  logs?.restore();
  logs = undefined;
});

describe("x-request-id", () => {
  it("is on every response: success, errors, 404, 405, a stored result, the OpenAPI document", async () => {
    const { apiKey } = await newAccount(100);
    const { batchId, itemIds } = await newBatch(apiKey, 1);
    const lease = await batchStub(batchId).startItem(itemIds[0]!);
    if (lease.action !== "run") throw new Error("not started");
    await env.RESULTS.put(`results/${batchId}/${itemIds[0]}`, "{}", {
      httpMetadata: { contentType: "application/json" },
    });
    await batchStub(batchId).completeItem(
      itemIds[0]!,
      lease.attempt,
      {},
      { resultKey: `results/${batchId}/${itemIds[0]}` },
    );

    const responses = await Promise.all([
      call("/api/credits", { headers: keyHeaders(apiKey) }),
      call(`/api/batch/scrape/${batchId}/items/${itemIds[0]}/result`, { headers: keyHeaders(apiKey) }),
      call("/api/credits"),
      call("/nope"),
      call("/api/credits", { method: "POST", headers: keyHeaders(apiKey), body: "{}" }),
      call("/openapi.json"),
      call("/admin/accounts", { method: "POST", headers: adminHeaders, body: "{" }),
    ]);
    expect(responses.map((r) => r.status)).toEqual([200, 200, 401, 404, 405, 200, 400]);
    const ids = responses.map((r) => r.headers.get("x-request-id"));
    for (const id of ids) expect(id).toMatch(UUID_RE);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("echoes a well-formed incoming id, in the header and in the error body", async () => {
    for (const id of ["req-2026-11-23_abc.123:x", "0123456789abcdef", crypto.randomUUID(), "A".repeat(128)]) {
      const r = await callJson("/api/credits", { headers: { "x-request-id": id } });
      expect(r.res.headers.get("x-request-id")).toBe(id);
      expectError(r, 401, "MISSING_API_KEY");
      expect(r.body.requestId).toBe(id);
    }
  });

  it("replaces a malformed incoming id with a fresh one", async () => {
    for (const id of [
      "short",
      "x".repeat(129),
      "has space in it",
      "semi;colon;value",
      "<script>alert(1)</script>",
      "-leading-dash-1",
      'quote"inside"id',
    ]) {
      const r = await callJson("/nope", { headers: { "x-request-id": id } });
      const echoed = r.res.headers.get("x-request-id");
      expect(echoed).toMatch(UUID_RE);
      expect(r.body.requestId).toBe(echoed);
    }
  });

  it("an unexpected failure is a 500 carrying the request id, logged once with its cause, never returned", async () => {
    logs = captureLogs();
    const { apiKey } = await newAccount(100);
    const broken = {
      getByName: () => {
        throw new Error("injected: storage exploded at /srv/secret/path.ts:12");
      },
    } as unknown as Env["ACCOUNT"];
    const res = await createApp().fetch(
      new Request("https://api.test/api/credits", {
        headers: { ...keyHeaders(apiKey), "x-request-id": "trace-me-12345" },
      }),
      { ...env, ACCOUNT: broken },
      createExecutionContext(),
    );
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(JSON.parse(text)).toEqual({
      status: "error",
      message: "Internal server error.",
      code: "INTERNAL_ERROR",
      requestId: "trace-me-12345",
    });
    expect(text).not.toContain("injected");
    const errors = logs.json().filter((l) => l.msg === "unhandled error");
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ level: "error", requestId: "trace-me-12345" });
    expect(String(errors[0]!.error)).toContain("injected: storage exploded");
    expect(logs.json().filter((l) => l.msg === "request" && l.requestId === "trace-me-12345")).toMatchObject([
      { status: 500, code: "INTERNAL_ERROR" },
    ]);
  });
});
