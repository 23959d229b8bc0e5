/**
 * Model-based tests: random command sequences against the real objects and a reference
 * model (test/reliability/model/). After every step, items, counts, credits and the whole
 * ledger must match the model. RELIABILITY_RUNS sets how many sequences run.
 */
import fc from "fast-check";
import { describe, it } from "vitest";
import { reportFigures } from "./figures";
import type { Cmd } from "./model/commands";
import { sequences } from "./model/commands";
import { Harness } from "./model/harness";
import { RUNS } from "./runs";

reportFigures("model");

describe("model-based: the real objects against the reference model", () => {
  it(
    `${RUNS} random command sequences keep every item, refund and credit exact`,
    async () => {
      await fc.assert(
        fc.asyncProperty(sequences(30), (cmds) => Harness.play(cmds)),
        { numRuns: RUNS, endOnFailure: false },
      );
    },
    30_000 + RUNS * 8_000,
  );
});

/**
 * Shrunk counterexamples, kept as plain sequences. Each was found by the property above
 * when a bug was put into src/ on purpose (named in the test), and fails again if it returns.
 */
describe("model-based regressions", () => {
  const regressions: [string, Cmd[]][] = [
    [
      "a start after the cancel runs nothing (bug: decideStart ignored a cancelled batch)",
      [
        { kind: "create", n: 1, markdown: false, idem: false },
        { kind: "cancel", b: 0 },
        { kind: "start", b: 0, i: 0, token: "none" },
      ],
    ],
    [
      "a cancel refunds pending items only, never running ones (bug: the refund counted a running item)",
      [
        { kind: "create", n: 1, markdown: false, idem: false },
        { kind: "start", b: 0, i: 0, token: "none" },
        { kind: "cancel", b: 0 },
        { kind: "complete", b: 0, i: 0, older: false },
      ],
    ],
    [
      "a completion delivered twice is charged once (bug: a duplicate settled again)",
      [
        { kind: "create", n: 1, markdown: false, idem: false },
        { kind: "start", b: 0, i: 0, token: "none" },
        { kind: "complete", b: 0, i: 0, older: false },
        { kind: "replayCreate", b: 0 },
        { kind: "complete", b: 0, i: 0, older: false },
      ],
    ],
    [
      "a failure at an extraction limit is charged, never requeued, and a retry charges it again (bug: charged failures refunded)",
      [
        { kind: "create", n: 1, markdown: false, idem: false },
        { kind: "start", b: 0, i: 0, token: "none" },
        { kind: "failCharged", b: 0, i: 0, retryable: true, older: false },
        { kind: "repeatSettle", b: 0, i: 0 },
        { kind: "retry", b: 0, fault: "none" },
        { kind: "start", b: 0, i: 0, token: "none" },
        { kind: "failCharged", b: 0, i: 0, retryable: false, older: false },
      ],
    ],
    [
      "mid-sweep, every read says cancelled, nothing starts, retry is refused and an eviction resumes the sweep",
      [
        { kind: "create", n: 4, markdown: false, idem: false },
        { kind: "start", b: 0, i: 1, token: "none" },
        { kind: "cancel", b: 0 },
        { kind: "alarm", b: 0 },
        { kind: "start", b: 0, i: 3, token: "none" },
        { kind: "redispatch", b: 0, i: 2 },
        { kind: "start", b: 0, i: 2, token: "latest" },
        { kind: "evict", b: 0, account: false },
        { kind: "fail", b: 0, i: 1, retryable: true, older: false },
        { kind: "retry", b: 0, fault: "none" },
        { kind: "alarm", b: 0 },
        { kind: "startGroup", b: 0, is: [0, 2, 3] },
        { kind: "cancel", b: 0 },
      ],
    ],
    [
      "a reset while a cancel delivers its refund leaves the sweep's alarm armed (bug: the cancel armed it after the delivery)",
      [
        { kind: "create", n: 3, markdown: false, idem: false },
        { kind: "alarm", b: 0 },
        { kind: "reset", b: 0, i: 0, account: false, during: "cancel" },
        { kind: "start", b: 0, i: 1, token: "none" },
      ],
    ],
  ];

  it.each(regressions)("%s", async (_name, cmds) => {
    await Harness.play(cmds);
  });
});
