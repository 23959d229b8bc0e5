/**
 * The work budget of extracting one page. The parser, the tree walks and the builders
 * count their work here as they go, and the extraction stops at once (an
 * ExtractionLimitError) when a limit is passed, so no page costs more than its budget.
 *
 * It also says when to pause. Extraction is CPU work with no I/O in it: without pauses one
 * hostile page holds the isolate, and with it the other items of the queue batch and
 * other accounts' requests. In production workerd the clock only moves across I/O, so a
 * slice is measured in work units (and locally, where the clock moves, in ms as well);
 * the elapsed time is checked after every pause.
 */
import { utf8Length } from "./text";

export interface ExtractionLimits {
  /** Element visits by the parser: every element, once more for each selector that matches it. */
  maxElements: number;
  /** UTF-8 bytes of the page's text and attribute values. */
  maxTextBytes: number;
  /** UTF-8 bytes of the stored result. */
  maxOutputBytes: number;
  /** UTF-8 bytes of one selector's results. */
  maxSelectorBytes: number;
  /** Milliseconds from the start of extraction (fetching is not counted). */
  timeoutMs: number;
}

export type ExtractionLimit = keyof ExtractionLimits;

/** The var that sets each limit (src/executor/config.ts). */
export const LIMIT_VARS: Record<ExtractionLimit, string> = {
  maxElements: "EXTRACT_MAX_ELEMENTS",
  maxTextBytes: "EXTRACT_MAX_TEXT_BYTES",
  maxOutputBytes: "EXTRACT_MAX_OUTPUT_BYTES",
  maxSelectorBytes: "EXTRACT_MAX_SELECTOR_BYTES",
  timeoutMs: "EXTRACT_TIMEOUT_MS",
};

/** Why the defaults are what they are: docs/extraction-limits.md. */
export const DEFAULT_EXTRACTION_LIMITS: ExtractionLimits = {
  maxElements: 100_000,
  maxTextBytes: 4 * 1024 * 1024,
  maxOutputBytes: 5 * 1024 * 1024,
  maxSelectorBytes: 1024 * 1024,
  timeoutMs: 5_000,
};

/** What one step of each kind weighs, in work units (roughly: a parser callback is dear, a character cheap). */
export const WORK = { parsedElement: 64, node: 4, char: 1 } as const;

/** Work units, or milliseconds of a moving clock, between two pauses. */
const SLICE_UNITS = 64 * 1024;
const SLICE_MS = 4;

export class ExtractionLimitError extends Error {
  override readonly name = "ExtractionLimitError";
  constructor(
    readonly limit: ExtractionLimit,
    readonly value: number,
    what: string,
  ) {
    super(`Extraction stopped: ${what} (${LIMIT_VARS[limit]} = ${value}).`);
  }
}

export interface BudgetOptions {
  now?: () => number;
  /** Gives the event loop a turn. */
  pause?: () => Promise<void>;
  sliceUnits?: number;
}

export class WorkBudget {
  /** Work units so far (see WORK). Tests read it to show that work grows linearly with input. */
  work = 0;
  /** Pauses taken so far. */
  pauses = 0;
  /** The limit passed, kept because an error thrown in an HTMLRewriter handler reaches the caller reworded. */
  exceeded: ExtractionLimitError | null = null;
  #elements = 0;
  #textBytes = 0;
  #outputBytes = 0;
  readonly #selectorBytes = new Map<string, number>();
  readonly #now: () => number;
  readonly #pause: () => Promise<void>;
  readonly #sliceUnits: number;
  readonly #startedAt: number;
  #sliceEndsAt: number;
  #sliceStartedAt: number;

  constructor(
    readonly limits: ExtractionLimits = DEFAULT_EXTRACTION_LIMITS,
    options: BudgetOptions = {},
  ) {
    this.#now = options.now ?? Date.now;
    this.#pause = options.pause ?? (() => scheduler.wait(0));
    this.#sliceUnits = options.sliceUnits ?? SLICE_UNITS;
    this.#startedAt = this.#sliceStartedAt = this.#now();
    this.#sliceEndsAt = this.#sliceUnits;
  }

  /** One element handed over by the parser (or matched by one more selector). */
  element(): void {
    this.work += WORK.parsedElement;
    if (++this.#elements > this.limits.maxElements)
      this.fail("maxElements", `the page has more than ${this.limits.maxElements} elements`);
  }

  /** Text or an attribute value the parser handed over. */
  text(chunk: string): void {
    this.work += chunk.length * WORK.char;
    this.#textBytes += utf8Length(chunk);
    if (this.#textBytes > this.limits.maxTextBytes) {
      this.fail("maxTextBytes", `the page's text and attribute values are over ${this.limits.maxTextBytes} bytes`);
    }
  }

  /** Work that has no limit of its own (walking the tree, building strings); it counts towards the next pause. */
  step(units: number): void {
    this.work += units;
  }

  /** Bytes added to the result, counted as it is built. */
  output(bytes: number): void {
    this.#outputBytes += bytes;
    if (this.#outputBytes > this.limits.maxOutputBytes) this.failOutput();
  }

  /** Bytes added to one selector's results (and to the result). */
  selectorOutput(name: string, bytes: number): void {
    const total = (this.#selectorBytes.get(name) ?? 0) + bytes;
    this.#selectorBytes.set(name, total);
    if (total > this.limits.maxSelectorBytes) {
      this.fail(
        "maxSelectorBytes",
        `the results of selector ${JSON.stringify(name.slice(0, 100))} are over ${this.limits.maxSelectorBytes} bytes`,
      );
    }
    this.output(bytes);
  }

  /** The finished result, measured exactly (the running count leaves out separators and escapes). */
  checkResult(content: string): void {
    // A string has at least as many UTF-8 bytes as UTF-16 units: a long one needs no scan.
    if (content.length > this.limits.maxOutputBytes || utf8Length(content) > this.limits.maxOutputBytes)
      this.failOutput();
  }

  /** Whether this slice of work is spent: the caller should `await pause()` now. */
  due(): boolean {
    return this.work >= this.#sliceEndsAt || this.#now() - this.#sliceStartedAt >= SLICE_MS;
  }

  /** Gives other work a turn if this slice is spent, then checks the time limit. */
  async pause(): Promise<void> {
    if (!this.due()) return this.checkTime();
    this.pauses++;
    await this.#pause();
    this.#sliceEndsAt = this.work + this.#sliceUnits;
    this.#sliceStartedAt = this.#now();
    this.checkTime();
  }

  checkTime(): void {
    if (this.#now() - this.#startedAt > this.limits.timeoutMs)
      this.fail("timeoutMs", `it took longer than ${this.limits.timeoutMs} ms`);
  }

  private failOutput(): never {
    return this.fail("maxOutputBytes", `the result is over ${this.limits.maxOutputBytes} bytes`);
  }

  private fail(limit: ExtractionLimit, what: string): never {
    const error = new ExtractionLimitError(limit, this.limits[limit], what);
    this.exceeded ??= error;
    throw error;
  }
}

/** The limit error behind `err`: HTMLRewriter rewords errors thrown in its handlers. */
export function limitErrorOf(err: unknown, budget: WorkBudget): ExtractionLimitError | null {
  return err instanceof ExtractionLimitError ? err : budget.exceeded;
}
