/**
 * An expired batch answers 410 BATCH_EXPIRED to its owner on every surface that reads it
 * (issue 18): the live view, SerpWow's batch read and stop, Firecrawl's status, errors and
 * cancel, each in its own envelope. Another account still gets 404 everywhere.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { batchStub, call, callJson, keyHeaders, newAccount, readAnswer } from "../helpers";
import { expectError } from "../http/support";
import { backdateFinish, finishedBatch } from "./support";

/** A batch of `apiKey`'s that finished 31 days ago and was removed by its retention alarm. */
async function expiredBatch(apiKey: string): Promise<string> {
  const { batchId } = await finishedBatch(apiKey, 2, 1);
  await backdateFinish(batchId, 31);
  await runDurableObjectAlarm(batchStub(batchId));
  return batchId;
}

async function setup() {
  const owner = await newAccount(100);
  const other = await newAccount(100);
  const batchId = await expiredBatch(owner.apiKey);
  return { owner: owner.apiKey, other: other.apiKey, batchId };
}

function live(batchId: string, headers: Record<string, string>) {
  return call(`/api/batch/scrape/${batchId}/live`, { headers: { upgrade: "websocket", ...headers } }).then(readAnswer);
}

describe("an expired batch on the live view", () => {
  it("410 BATCH_EXPIRED to its owner (x-api-key or the browser's subprotocol); 404 to anyone else", async () => {
    const { owner, other, batchId } = await setup();
    for (let i = 0; i < 2; i++) {
      // Twice: the second time the key is known to the account, the first time maybe not.
      expectError(await live(batchId, keyHeaders(owner)), 410, "BATCH_EXPIRED");
      expectError(await live(batchId, { "sec-websocket-protocol": `batch-live, ${owner}` }), 410, "BATCH_EXPIRED");
      expectError(await live(batchId, keyHeaders(other)), 404, "NOT_FOUND");
      expectError(await live(batchId, { "sec-websocket-protocol": `batch-live, ${other}` }), 404, "NOT_FOUND");
    }
  });
});

describe("an expired batch on the SerpWow surface", () => {
  function serp(path: string, apiKey: string) {
    return callJson(`${path}?api_key=${encodeURIComponent(apiKey)}`);
  }
  const expiredMessage = expect.stringMatching(/retention period/);

  it("410 in SerpWow's envelope to its owner (read and stop); 404 to anyone else", async () => {
    const { owner, other, batchId } = await setup();
    for (const path of [`/live/batches/${batchId}`, `/live/batches/${batchId}/stop`]) {
      const mine = await serp(path, owner);
      expect(mine.status, path).toBe(410);
      expect(mine.body).toEqual({ request_info: { success: false, message: expiredMessage } });
      const theirs = await serp(path, other);
      expect(theirs.status, path).toBe(404);
      expect(theirs.body).toEqual({ request_info: { success: false, message: "No batch found with this ID." } });
    }
  });
});

describe("an expired batch on the Firecrawl surface", () => {
  function v2(path: string, apiKey: string, method = "GET") {
    return callJson(path, { method, headers: { authorization: `Bearer ${apiKey}` } });
  }

  it("410 in Firecrawl's envelope to its owner (status, errors, cancel); 404 to anyone else", async () => {
    const { owner, other, batchId } = await setup();
    const calls: [string, string][] = [
      [`/v2/batch/scrape/${batchId}`, "GET"],
      [`/v2/batch/scrape/${batchId}/errors`, "GET"],
      [`/v2/batch/scrape/${batchId}`, "DELETE"],
    ];
    for (const [path, method] of calls) {
      const mine = await v2(path, owner, method);
      expect(mine.status, `${method} ${path}`).toBe(410);
      expect(mine.body).toEqual({
        success: false,
        error: expect.stringMatching(/retention period/),
        code: "BATCH_EXPIRED",
      });
      const theirs = await v2(path, other, method);
      expect(theirs.status, `${method} ${path}`).toBe(404);
      expect(theirs.body).toMatchObject({ success: false, code: "NOT_FOUND" });
    }
  });
});
