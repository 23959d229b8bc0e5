/**
 * Reports settlements to one batch object, many per call (group commit): an idle reporter
 * sends a report at once; reports that come in while a call is out wait for it and go
 * together in the next one. So no report waits for a timer, and under load the batch
 * object takes one call per group instead of one per item.
 */
import { MAX_ITEMS_PER_CALL, type SettleReport, type SettleResult } from "../domain/executor-contract";

type Waiting = { report: SettleReport; resolve: (result: SettleResult) => void; reject: (err: unknown) => void };

export class SettleReporter {
  #waiting: Waiting[] = [];
  #sending = false;

  constructor(
    private readonly send: (reports: SettleReport[]) => Promise<SettleResult[]>,
    private readonly maxPerCall = MAX_ITEMS_PER_CALL,
  ) {}

  /** Resolves with this report's result, or rejects with the error of the call that carried it. */
  report(report: SettleReport): Promise<SettleResult> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ report, resolve, reject });
      if (!this.#sending) void this.#drain();
    });
  }

  async #drain(): Promise<void> {
    this.#sending = true;
    while (this.#waiting.length > 0) {
      const group = this.#waiting.splice(0, this.maxPerCall);
      try {
        const results = await this.send(group.map((w) => w.report));
        group.forEach((w, i) => {
          const result = results[i];
          if (result) w.resolve(result);
          else w.reject(new Error(`no result for report ${i} of ${group.length}`));
        });
      } catch (err) {
        for (const w of group) w.reject(err);
      }
    }
    this.#sending = false;
  }
}
