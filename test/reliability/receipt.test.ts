/**
 * The receipt (GET /api/batch/scrape/:id/receipt) against the reference model: after every
 * step of random sequences of create, start, complete, fail (transient, final, charged),
 * retry (with its reservation faults), lease expiry and cancel, each batch's receipt has the
 * model's totals and exactly the model's ledger rows for that batch (read page by page), and
 * reserved = charged + refunded + held, with held what the model's unfinished items hold.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { callJson, keyHeaders } from "../helpers";
import { reportFigures } from "./figures";
import type { Cmd } from "./model/commands";
import { anyCmd, createCmd } from "./model/commands";
import { Harness } from "./model/harness";
import { RUNS } from "./runs";

reportFigures("receipt");

/** The commands that move a batch's credits (no outbox faults: the receipt is read once the ledger caught up). */
const MONEY_KINDS = new Set<Cmd["kind"]>([
  "create",
  "start",
  "startGroup",
  "complete",
  "fail",
  "failCharged",
  "settleGroup",
  "repeatSettle",
  "retry",
  "expireLeases",
  "cancel",
]);
const moneyCmd = anyCmd.filter((c) => MONEY_KINDS.has(c.kind));

function moneySequences(maxLength: number): fc.Arbitrary<Cmd[]> {
  return fc
    .tuple(createCmd, fc.array(moneyCmd, { minLength: 1, maxLength, size: "max" }))
    .map(([first, rest]) => [first, ...rest]);
}

async function receiptPages(apiKey: string, batchId: string) {
  const entries: { idempotencyKey: string; kind: string; amount: number; itemId: string | null }[] = [];
  let cursor: string | null = null;
  let first: Record<string, any> | undefined;
  for (let n = 0; n < 100; n++) {
    const q: string = `?limit=3${cursor === null ? "" : `&cursor=${cursor}`}`;
    const r: { status: number; body: any } = await callJson(`/api/batch/scrape/${batchId}/receipt${q}`, {
      headers: keyHeaders(apiKey),
    });
    expect(r.status).toBe(200);
    first ??= r.body;
    entries.push(...r.body.entries);
    cursor = r.body.nextCursor;
    if (cursor === null) return { receipt: first!, entries };
  }
  throw new Error("receipt paging does not end");
}

/** Every batch's receipt equals what the model booked for it. */
async function checkReceipts(h: Harness): Promise<void> {
  for (const b of h.model.batches) {
    const { receipt, entries } = await receiptPages(h.apiKey, b.id);
    const booked = [...h.model.ledger].filter(([key]) => key.startsWith(`${b.id}:`));
    const sum = (kind: string) => booked.filter(([, e]) => e.kind === kind).reduce((n, [, e]) => n + e.amount, 0);
    const held = b.items.filter((i) => i.status === "pending" || i.status === "running").length * b.price;
    expect({
      reserved: receipt.reserved,
      charged: receipt.charged,
      refunded: receipt.refunded,
      held: receipt.held,
      balanced: receipt.balanced,
      settled: receipt.settled,
      batch: receipt.batch,
    }).toEqual({
      reserved: sum("reserve"),
      charged: sum("consume"),
      refunded: sum("refund"),
      held,
      balanced: true,
      settled: true,
      batch: { creditsReserved: b.reserved, creditsUsed: b.used, creditsRefunded: b.refunded },
    });
    expect(receipt.reserved).toBe(receipt.charged + receipt.refunded + receipt.held);
    const got = new Map(entries.map((e) => [e.idempotencyKey, { kind: e.kind, amount: e.amount }]));
    expect(got.size).toBe(entries.length);
    expect(got).toEqual(new Map(booked));
    // Every item's charge or refund names its item.
    for (const e of entries) if (e.kind === "consume") expect(b.items.map((i) => i.id)).toContain(e.itemId);
  }
}

describe("receipt: reserved = charged + refunded + held, row for row, against the model", () => {
  it(
    `${RUNS} random sequences of create, start, complete, fail, retry and cancel`,
    async () => {
      await fc.assert(
        fc.asyncProperty(moneySequences(20), (cmds) => Harness.play(cmds, 30, checkReceipts)),
        { numRuns: RUNS, endOnFailure: false },
      );
    },
    30_000 + RUNS * 8_000,
  );

  it("a retry whose reservation reply was lost: reserved and released in the ledger, still balanced", async () => {
    await Harness.play(
      [
        { kind: "create", n: 2, markdown: false, idem: false },
        { kind: "start", b: 0, i: 0, token: "none" },
        { kind: "fail", b: 0, i: 0, retryable: false, older: false },
        { kind: "retry", b: 0, fault: "replyLost" },
        { kind: "retry", b: 0, fault: "none" },
        { kind: "start", b: 0, i: 0, token: "none" },
        { kind: "complete", b: 0, i: 0, older: false },
        { kind: "cancel", b: 0 },
      ],
      30,
      checkReceipts,
    );
  });
});
