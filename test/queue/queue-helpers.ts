/** Helpers for the queue project: the shared ones, plus creating a batch without listing its items. */
import { expect } from "vitest";
import { callJson, keyHeaders } from "../helpers";

export { expectBalanced, getBatch, newAccount, runInBatch } from "../helpers";

export async function newBatchIdOnly(
  apiKey: string,
  urls: string[],
  extra: Record<string, unknown> = {},
): Promise<string> {
  const res = await callJson("/api/batch/scrape", {
    method: "POST",
    headers: keyHeaders(apiKey),
    body: JSON.stringify({ urls, ...extra }),
  });
  expect(res.status).toBe(202);
  return res.body.batchId;
}
