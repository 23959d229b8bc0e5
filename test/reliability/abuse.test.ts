/** Abuse limits: request size (413) on every route that takes a body; rate limits and caps (see below). */
import { describe, expect, it } from "vitest";
import { adminHeaders, call, callJson, getCredits, keyHeaders, newAccount, newBatch } from "../helpers";
import { expectNoStack } from "../http/support";
import { count, reportFigures } from "./figures";

reportFigures("abuse");

const MAX_BODY_BYTES = 3 * 1024 * 1024;

describe("request size limits", () => {
  it("a body one byte over MAX_BODY_BYTES is refused with 413 on every operation that takes a body, before anything happens", async () => {
    const { apiKey, accountId } = await newAccount(100);
    const { batchId } = await newBatch(apiKey, 1);
    const doc = (await callJson("/openapi.json")).body as { paths: Record<string, Record<string, { requestBody?: unknown; security?: Record<string, unknown>[] }>> };
    const withBody = Object.entries(doc.paths).flatMap(([template, methods]) =>
      Object.entries(methods)
        .filter(([, spec]) => spec.requestBody !== undefined)
        .map(([method, spec]) => ({ method: method.toUpperCase(), template, admin: (spec.security ?? []).some((s) => "AdminToken" in s) })),
    );
    expect(withBody.length).toBeGreaterThanOrEqual(4);
    const head = '{"urls":["https://example.com/';
    const body = `${head}${"a".repeat(MAX_BODY_BYTES + 1 - head.length - 3)}"]}`;
    expect(new TextEncoder().encode(body).byteLength).toBe(MAX_BODY_BYTES + 1);
    for (const op of withBody) {
      const path = op.template.replace("{accountId}", accountId).replace("{batchId}", batchId);
      const res = await call(path, { method: op.method, headers: op.admin ? adminHeaders : keyHeaders(apiKey), body });
      count("badInputs");
      const text = await res.text();
      expect({ op: `${op.method} ${op.template}`, status: res.status }).toEqual({ op: `${op.method} ${op.template}`, status: 413 });
      expect(JSON.parse(text)).toMatchObject({ status: "error", code: "PAYLOAD_TOO_LARGE" });
      expectNoStack(text);
    }
    expect(await getCredits(apiKey)).toMatchObject({ balance: 98, reserved: 2, granted: 100 });
  });
});

// Per-key rate limits (429 RATE_LIMITED with Retry-After on create and cancel) and the cap on
// active batches per account (429 TOO_MANY_ACTIVE_BATCHES) were built while this suite was
// written: test/http/rate-limit.test.ts covers each refusal; races.test.ts races creates for
// the cap's last place. What is left open is a question of policy:
describe("rate limits: open questions", () => {
  // Proposal: an Idempotency-Key replay of an accepted create answers 202 with the same batch
  // even when the key is over its limit (a client retrying a request that already succeeded
  // should not be told to slow down). Today the limiter runs before the replay is recognised.
  it.todo("an idempotent replay of an accepted create is not refused by the rate limit");
});
