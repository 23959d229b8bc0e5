/**
 * The suite's figures (commands run, races tried, faults injected, bad inputs sent).
 * Each file counts as it goes and prints one line when it ends:
 *   [reliability] {"file":"races","races":412}
 * scripts/reliability.mjs adds these lines up into the table it prints.
 */
import { afterAll } from "vitest";

export type Figure = "commands" | "sequences" | "races" | "faults" | "badInputs" | "fiveXx" | "alarms";

const totals: Partial<Record<Figure, number>> = {};

export function count(figure: Figure, n = 1): void {
  totals[figure] = (totals[figure] ?? 0) + n;
}

/** Call once at the top of a test file. */
export function reportFigures(file: string): void {
  afterAll(() => {
    console.log(`[reliability] ${JSON.stringify({ file, ...totals })}`);
    for (const key of Object.keys(totals) as Figure[]) delete totals[key];
  });
}
