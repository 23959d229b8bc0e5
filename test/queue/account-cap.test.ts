import { afterEach, describe, expect, it, vi } from "vitest";
import { accountStub, getBatch } from "../helpers";
import { expectBalanced, newAccount, newBatchIdOnly } from "./queue-helpers";
import { messagesSent, watchConsumer } from "./consumer-watch";
import { fakeSite, gate } from "./site";

afterEach(() => vi.restoreAllMocks());

// The queue project runs with ACCOUNT_MAX_CONCURRENCY = 3.
describe("account-wide concurrency cap", () => {
  it("three batches wanting 2 slots each never run more than 3 items at once; waiting batches are woken as slots free", async () => {
    const hold = gate();
    const site = fakeSite(() => ({ gate: hold.promise }));
    const consumer = watchConsumer();
    const { apiKey, accountId } = await newAccount(100);
    const ids: string[] = [];
    for (let b = 0; b < 3; b++) {
      ids.push(
        await newBatchIdOnly(
          apiKey,
          [0, 1, 2].map((i) => `https://site.example/b${b}/${i}`),
          { maxConcurrency: 2 },
        ),
      );
    }
    const running = async () => {
      let n = 0;
      for (const id of ids) n += (await getBatch(apiKey, id)).body.runningCount;
      return n;
    };
    await vi.waitFor(async () => expect(await running()).toBe(3), { timeout: 5000, interval: 20 });
    // Quiet: every message the batches have sent has reached the consumer (the 3 running
    // items' and any other), and nothing waits to be sent. Only then: still 3, no 4th fetch.
    await vi.waitFor(
      async () => {
        let sent = 0;
        for (const id of ids) sent += await messagesSent(id);
        expect(consumer.received(...ids)).toHaveLength(sent);
      },
      { timeout: 5000, interval: 20 },
    );
    expect(await running()).toBe(3);
    expect(site.total()).toBe(3);
    const usage = await accountStub(accountId).slotUsage();
    expect(usage.cap).toBe(3);
    expect(usage.granted).toBe(3);

    hold.open();
    for (const id of ids) {
      await vi.waitFor(
        async () => {
          const { body } = await getBatch(apiKey, id);
          if (body.status !== "completed") throw new Error(`${id}: ${body.status}`);
        },
        { timeout: 10_000, interval: 50 },
      );
    }
    expect(site.total()).toBe(9);
    expect(site.maxInFlight()).toBeLessThanOrEqual(3);
    await expectBalanced(apiKey, ids);
    // Finished batches give every slot back.
    await vi.waitFor(async () => expect((await accountStub(accountId).slotUsage()).granted).toBe(0), {
      timeout: 5000,
      interval: 50,
    });
  }, 20_000);
});
