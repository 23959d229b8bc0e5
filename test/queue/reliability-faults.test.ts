/**
 * Reliability faults on the real path (batch object -> queue -> consumer -> batch object):
 * an R2 write that fails, and queue messages delivered again or out of order after the
 * item finished. Each ends with the item run once and charged once.
 */
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { count, reportFigures } from "../reliability/figures";
import { expectBalanced, getBatch, newAccount, newBatchIdOnly } from "./queue-helpers";
import { watchConsumer } from "./consumer-watch";
import { fakeSite } from "./site";

reportFigures("queue-faults");
afterEach(() => vi.restoreAllMocks());

async function waitForStatus(apiKey: string, batchId: string, status: string) {
  return vi.waitFor(
    async () => {
      const { body } = await getBatch(apiKey, batchId);
      if (body.status !== status) throw new Error(`still ${body.status}`);
      return body;
    },
    { timeout: 10_000, interval: 20 },
  );
}

describe("an R2 write that fails", () => {
  it("the first put of a result rejects: the item is retried, stored once, charged once", async () => {
    const site = fakeSite(() => ({}));
    const realPut = env.RESULTS.put.bind(env.RESULTS);
    let failures = 0;
    const put = vi.spyOn(env.RESULTS, "put").mockImplementation(async (...args: Parameters<R2Bucket["put"]>) => {
      if (failures === 0) {
        failures++;
        count("faults");
        throw new Error("injected R2 failure");
      }
      return realPut(...args);
    });
    const { apiKey } = await newAccount(100);
    const batchId = await newBatchIdOnly(apiKey, ["https://site.example/r2"]);
    const b = await waitForStatus(apiKey, batchId, "completed");
    expect(failures).toBe(1);
    expect(put).toHaveBeenCalledTimes(2);
    expect(b.items[0]).toMatchObject({ status: "completed", attempts: 2, creditsUsed: 2 });
    expect(site.total()).toBe(2);
    expect(await expectBalanced(apiKey, [batchId])).toMatchObject({ used: 2, reserved: 0, balance: 98, refunded: 0 });
  });

  it("every put rejects: the item fails after its last attempt and is refunded, never charged", async () => {
    fakeSite(() => ({}));
    vi.spyOn(env.RESULTS, "put").mockImplementation(async () => {
      count("faults");
      throw new Error("injected R2 failure");
    });
    const { apiKey } = await newAccount(100);
    const batchId = await newBatchIdOnly(apiKey, ["https://site.example/r2-down"]);
    const b = await waitForStatus(apiKey, batchId, "failed");
    expect(b.items[0]).toMatchObject({
      status: "failed",
      attempts: 3,
      creditsUsed: 0,
      errorCode: "RESULT_STORE_FAILED",
    });
    expect(await expectBalanced(apiKey, [batchId])).toMatchObject({ used: 0, reserved: 0, balance: 100, refunded: 2 });
  });
});

describe("queue messages after the item finished", () => {
  it("the same message again and an older dispatch, both after completion: dropped, no fetch, no second charge", async () => {
    const site = fakeSite(() => ({}));
    const consumer = watchConsumer();
    const { apiKey } = await newAccount(100);
    const batchId = await newBatchIdOnly(apiKey, ["https://site.example/once", "https://site.example/twice"]);
    const b = await waitForStatus(apiKey, batchId, "completed");
    await vi.waitFor(() => expect(consumer.handled(batchId)).toHaveLength(2), { timeout: 5000, interval: 20 });
    for (const item of b.items) {
      await env.SCRAPE_QUEUE.send({ v: 1, batchId, itemId: item.uuid, dispatch: 1 });
      await env.SCRAPE_QUEUE.send({ v: 1, batchId, itemId: item.uuid, dispatch: 7 });
      count("faults", 2);
    }
    // All four consumed (acked, not retried) before we look for a fetch or a charge they caused.
    await vi.waitFor(
      () =>
        expect(
          consumer
            .handled(batchId)
            .slice(2)
            .map((h) => h.outcome),
        ).toEqual(["ack", "ack", "ack", "ack"]),
      { timeout: 5000, interval: 20 },
    );
    expect(site.total()).toBe(2);
    const after = (await getBatch(apiKey, batchId)).body;
    expect(after).toMatchObject({ status: "completed", completedCount: 2, creditsUsed: 4 });
    expect(await expectBalanced(apiKey, [batchId])).toMatchObject({ used: 4, reserved: 0, balance: 96 });
  });
});
