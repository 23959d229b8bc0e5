/**
 * How hard the reliability suite pushes. `npm test` runs the default (25 model sequences,
 * a few rounds of each race); `npm run reliability` sets RELIABILITY_RUNS higher, and
 * vitest.config.ts hands it to the tests through `provide`.
 */
import { inject } from "vitest";

declare module "vitest" {
  export interface ProvidedContext {
    reliabilityRuns: number;
  }
}

export const RUNS: number = inject("reliabilityRuns") ?? 25;

/** Rounds of a repeated race or fault: `base` in npm test, more as RUNS grows. */
export function rounds(base: number): number {
  return Math.max(base, Math.round((base * RUNS) / 25));
}

/** A test's time limit, grown with the work RELIABILITY_RUNS asks for. */
export function timeLimit(ms: number): number {
  return Math.round(ms * Math.max(1, RUNS / 25));
}
