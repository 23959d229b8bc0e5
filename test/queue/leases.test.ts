import { afterEach, describe, expect, it, vi } from "vitest";
import { expectBalanced, getBatch, newAccount, newBatchIdOnly, runInBatch } from "./queue-helpers";
import { watchConsumer } from "./consumer-watch";
import { fakeSite, gate } from "./site";

afterEach(() => vi.restoreAllMocks());

describe("a consumer that dies after startItem", () => {
  it("its lease expires, the item is dispatched again and completes once; the dead attempt's late report is ignored", async () => {
    const never = gate(); // the first attempt hangs, as if its consumer had died mid-fetch
    const site = fakeSite((_url, hit) => (hit === 1 ? { gate: never.promise } : {}));
    const consumer = watchConsumer();
    const { apiKey } = await newAccount(100);
    const batchId = await newBatchIdOnly(apiKey, ["https://site.example/slow"]);
    await vi.waitFor(async () => expect((await getBatch(apiKey, batchId)).body.runningCount).toBe(1), {
      timeout: 5000,
      interval: 20,
    });

    // Time passes: the lease runs out and the batch object's alarm takes the item back.
    await runInBatch(batchId, async (o, state) => {
      state.storage.sql.exec("UPDATE items SET lease_expires_at = ? WHERE status = 'running'", Date.now() - 1);
      await o.alarm();
    });
    const done = await vi.waitFor(
      async () => {
        const { body } = await getBatch(apiKey, batchId);
        if (body.status !== "completed") throw new Error(body.status);
        return body;
      },
      { timeout: 5000, interval: 20 },
    );
    expect(done.items[0]).toMatchObject({ status: "completed", attempts: 2, creditsUsed: 2 });
    expect(site.total()).toBe(2);

    // The first consumer wakes up (its fetch times out) and reports: ignored, nothing charged twice.
    never.open();
    await vi.waitFor(
      () =>
        expect(
          consumer
            .handled(batchId)
            .map((h) => [h.body.dispatch, h.outcome])
            .sort(),
        ).toEqual([
          [1, "ack"],
          [2, "ack"],
        ]),
      { timeout: 5000, interval: 20 },
    );
    expect((await getBatch(apiKey, batchId)).body.items[0]).toMatchObject({ status: "completed", attempts: 2 });
    expect(await expectBalanced(apiKey, [batchId])).toMatchObject({ used: 2, reserved: 0, balance: 98 });
  }, 15_000);
});
