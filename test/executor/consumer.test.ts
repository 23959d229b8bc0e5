/**
 * The consumer's calls to batch objects: one startItems per batch per queue batch, drops
 * acked without running, a failed startItems retries its group only, and settlements go
 * through settleItems. Fake objects; the items' targets are refused by the target rules,
 * so nothing is fetched.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import type { SettleReport, StartRequest, StartResult } from "../../src/domain/executor-contract";
import type { Env } from "../../src/env";
import { consumeScrapeBatch } from "../../src/executor/consumer";

type FakeMessage = {
  id: string;
  body: unknown;
  attempts: number;
  acked: boolean;
  retried: boolean;
  ack(): void;
  retry(): void;
};

function message(batchId: string, itemId: string, dispatch = 1): FakeMessage {
  return {
    id: crypto.randomUUID(),
    body: { v: 1, batchId, itemId, dispatch },
    attempts: 1,
    acked: false,
    retried: false,
    ack() {
      this.acked = true;
    },
    retry() {
      this.retried = true;
    },
  };
}

function fakeBatches(behaviour: (batchId: string, requests: readonly StartRequest[]) => StartResult[] | Error) {
  const starts: { batchId: string; itemIds: string[] }[] = [];
  const settles: { batchId: string; reports: SettleReport[] }[] = [];
  const env = {
    BATCH: {
      getByName: (batchId: string) => ({
        async startItems(requests: readonly StartRequest[]) {
          starts.push({ batchId, itemIds: requests.map((r) => r.itemId) });
          const answer = behaviour(batchId, requests);
          if (answer instanceof Error) throw answer;
          return answer;
        },
        async settleItems(reports: SettleReport[]) {
          settles.push({ batchId, reports });
          return reports.map(() => ({ ok: true, outcome: "settled" }));
        },
      }),
    },
  } as unknown as Env;
  return { env, starts, settles };
}

const run = (batchId: string, itemId: string): StartResult => ({
  action: "run",
  batchId,
  itemId,
  attempt: 1,
  url: "http://169.254.169.254/latest/meta-data", // refused before any fetch
  output: "json",
  selectors: null,
  leaseExpiresAt: Date.now() + 60_000,
});

async function consume(messages: FakeMessage[], env: Env) {
  await consumeScrapeBatch(
    { queue: "scrape-items", messages, ackAll() {}, retryAll() {} } as unknown as MessageBatch<unknown>,
    env,
  );
}

describe("queue consumer", () => {
  it("asks each batch object once per queue batch, for its messages in order", async () => {
    const [a, b] = [crypto.randomUUID(), crypto.randomUUID()];
    const items = Array.from({ length: 5 }, () => crypto.randomUUID());
    const messages = [
      message(a, items[0]!),
      message(b, items[1]!),
      message(a, items[2]!),
      message(b, items[3]!),
      message(a, items[4]!),
    ];
    const fake = fakeBatches((batchId, requests) => requests.map((r) => run(batchId, r.itemId)));
    await consume(messages, fake.env);
    expect(fake.starts).toHaveLength(2);
    expect(fake.starts.find((s) => s.batchId === a)!.itemIds).toEqual([items[0], items[2], items[4]]);
    expect(fake.starts.find((s) => s.batchId === b)!.itemIds).toEqual([items[1], items[3]]);
    // Every item was refused by the target rules: settled as failed, not retryable, through settleItems.
    const reports = fake.settles.flatMap((s) => s.reports);
    expect(reports.map((r) => r.itemId).sort()).toEqual([...items].sort());
    expect(
      reports.every((r) => r.outcome === "failed" && r.error.code === "BLOCKED_TARGET" && r.retryable === false),
    ).toBe(true);
    expect(fake.settles.length).toBeLessThan(reports.length); // grouped: they finished together
    expect(messages.every((m) => m.acked && !m.retried)).toBe(true);
  });

  it("acks dropped messages without running them", async () => {
    const batchId = crypto.randomUUID();
    const items = [crypto.randomUUID(), crypto.randomUUID()];
    const fake = fakeBatches((id, requests) =>
      requests.map((r, i) => (i === 0 ? { action: "drop", reason: "BATCH_CANCELLED" } : run(id, r.itemId))),
    );
    const messages = items.map((itemId) => message(batchId, itemId));
    await consume(messages, fake.env);
    expect(fake.settles.flatMap((s) => s.reports.map((r) => r.itemId))).toEqual([items[1]]);
    expect(messages.every((m) => m.acked)).toBe(true);
  });

  it("a batch object that fails to answer has only its own messages retried", async () => {
    const [down, up] = [crypto.randomUUID(), crypto.randomUUID()];
    const fake = fakeBatches((batchId, requests) =>
      batchId === down ? new Error("object reset") : requests.map((r) => run(batchId, r.itemId)),
    );
    const messages = [
      message(down, crypto.randomUUID()),
      message(up, crypto.randomUUID()),
      message(down, crypto.randomUUID()),
    ];
    await consume(messages, fake.env);
    expect(messages.map((m) => [m.acked, m.retried])).toEqual([
      [false, true],
      [true, false],
      [false, true],
    ]);
    expect(fake.settles.flatMap((s) => s.reports)).toHaveLength(1);
  });

  it("a malformed message is retried (towards the dead-letter queue) and does not hold up the others", async () => {
    const batchId = crypto.randomUUID();
    const fake = fakeBatches((id, requests) => requests.map((r) => run(id, r.itemId)));
    const bad = message(batchId, "not-a-uuid");
    const good = message(batchId, crypto.randomUUID());
    await consume([bad, good], fake.env);
    expect([bad.retried, bad.acked, good.acked]).toEqual([true, false, true]);
    expect(fake.starts).toEqual([{ batchId, itemIds: [(good.body as { itemId: string }).itemId] }]);
  });
});

describe("queue consumer: one hostile page holds nothing else up", () => {
  it("a normal item queued beside a hostile page finishes while the hostile one is still parsing", async () => {
    const [hostileBatch, normalBatch] = [crypto.randomUUID(), crypto.randomUUID()]; // two accounts' batches
    const [hostileUrl, normalUrl] = ["https://hostile.example/", "https://normal.example/"];
    const hostileHtml = `<body>${"<i>a</i>".repeat(20_000)}</body>`;
    const order: string[] = [];
    let hostileSettled!: () => void;
    const hostileDone = new Promise<void>((resolve) => (hostileSettled = resolve));
    let firstPause!: () => void;
    const paused = new Promise<void>((resolve) => (firstPause = resolve));

    // The budget pauses with scheduler.wait: note the first pause, then really wait.
    const realWait = scheduler.wait.bind(scheduler);
    const waitSpy = vi.spyOn(scheduler, "wait").mockImplementation((ms, options) => {
      firstPause();
      return realWait(ms, options);
    });
    // The normal page answers only once the hostile page is being parsed (it has paused), or done.
    const fetchSpy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input) => {
      const url = input instanceof Request ? input.url : String(input);
      if (url === normalUrl) await Promise.race([paused, hostileDone]);
      const html =
        url === hostileUrl ? hostileHtml : "<html><head><title>Normal</title></head><body><p>fine</p></body></html>";
      return new Response(html, { headers: { "content-type": "text/html" } });
    });

    const fake = fakeBatches((batchId, requests) =>
      requests.map((r) => ({ ...run(batchId, r.itemId), url: batchId === hostileBatch ? hostileUrl : normalUrl })),
    );
    const settleItems = (batchId: string) => async (reports: SettleReport[]) => {
      for (const r of reports)
        order.push(
          `${batchId === hostileBatch ? "hostile" : "normal"}:${r.outcome === "failed" ? r.error.code : r.outcome}`,
        );
      if (batchId === hostileBatch) hostileSettled();
      return reports.map(() => ({ ok: true, outcome: "settled" }));
    };
    const testEnv = {
      ...env,
      EXTRACT_MAX_ELEMENTS: "5000",
      BATCH: {
        getByName: (batchId: string) => ({ ...fake.env.BATCH.getByName(batchId), settleItems: settleItems(batchId) }),
      },
    } as unknown as Env;
    const messages = [message(hostileBatch, crypto.randomUUID()), message(normalBatch, crypto.randomUUID())];
    try {
      await consume(messages, testEnv);
    } finally {
      waitSpy.mockRestore();
      fetchSpy.mockRestore();
    }

    expect(order).toEqual(["normal:completed", "hostile:EXTRACTION_LIMIT"]);
    expect(messages.every((m) => m.acked)).toBe(true);
  });
});
