/** Group commit of settlements: an idle reporter sends at once; reports that wait go together. */
import { describe, expect, it } from "vitest";
import type { SettleReport, SettleResult } from "../../src/domain/executor-contract";
import { SettleReporter } from "../../src/executor/settle-reporter";

const report = (n: number): SettleReport => ({ itemId: `item-${n}`, attempt: 1, outcome: "completed", result: n });
const settled: SettleResult = { ok: true, outcome: "settled" };

/** A fake batch object whose calls finish when the test says so. */
function fakeObject() {
  const calls: { reports: SettleReport[]; finish: (r?: SettleResult[] | Error) => void }[] = [];
  const send = (reports: SettleReport[]) =>
    new Promise<SettleResult[]>((resolve, reject) => {
      calls.push({
        reports,
        finish: (r) => (r instanceof Error ? reject(r) : resolve(r ?? reports.map(() => settled))),
      });
    });
  return { calls, send };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe("SettleReporter", () => {
  it("sends the first report at once, and the ones that came in meanwhile together in the next call", async () => {
    const object = fakeObject();
    const reporter = new SettleReporter(object.send);
    const first = reporter.report(report(0));
    await tick();
    expect(object.calls.map((c) => c.reports.length)).toEqual([1]);
    const rest = [1, 2, 3, 4].map((n) => reporter.report(report(n)));
    await tick();
    expect(object.calls).toHaveLength(1); // waiting for the call that is out
    object.calls[0]!.finish();
    expect(await first).toEqual(settled);
    await tick();
    expect(object.calls.map((c) => c.reports.map((r) => r.itemId))).toEqual([
      ["item-0"],
      ["item-1", "item-2", "item-3", "item-4"],
    ]);
    object.calls[1]!.finish([
      settled,
      { ok: true, outcome: "duplicate" },
      settled,
      { ok: true, outcome: "ignored", reason: "STALE_ATTEMPT" },
    ]);
    expect(await Promise.all(rest)).toEqual([
      settled,
      { ok: true, outcome: "duplicate" },
      settled,
      { ok: true, outcome: "ignored", reason: "STALE_ATTEMPT" },
    ]);
  });

  it("a failed call rejects exactly the reports it carried; later reports still go", async () => {
    const object = fakeObject();
    const reporter = new SettleReporter(object.send);
    const a = reporter.report(report(0));
    await tick();
    const b = reporter.report(report(1));
    object.calls[0]!.finish(new Error("object reset"));
    await expect(a).rejects.toThrow("object reset");
    await tick();
    expect(object.calls).toHaveLength(2);
    object.calls[1]!.finish();
    expect(await b).toEqual(settled);
    const c = reporter.report(report(2));
    await tick();
    object.calls[2]!.finish();
    expect(await c).toEqual(settled);
  });

  it("never sends more than maxPerCall reports in one call", async () => {
    const object = fakeObject();
    const reporter = new SettleReporter(object.send, 3);
    const first = reporter.report(report(0));
    await tick();
    const waiting = Array.from({ length: 7 }, (_, n) => reporter.report(report(n + 1)));
    object.calls[0]!.finish();
    await first;
    for (let i = 1; i <= 3; i++) {
      await tick();
      object.calls[i]!.finish();
    }
    await Promise.all(waiting);
    expect(object.calls.map((c) => c.reports.length)).toEqual([1, 3, 3, 1]);
  });

  it("a call that answers too few results rejects the unanswered reports", async () => {
    const object = fakeObject();
    const reporter = new SettleReporter(object.send);
    const first = reporter.report(report(0));
    await tick();
    const [b, c] = [reporter.report(report(1)), reporter.report(report(2))];
    object.calls[0]!.finish();
    await first;
    await tick();
    object.calls[1]!.finish([settled]);
    expect(await b).toEqual(settled);
    await expect(c).rejects.toThrow(/no result/);
  });
});
