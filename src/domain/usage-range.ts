/**
 * GET /api/usage-stats as Spidra's SDK reads it (`usage.get(range)`): the periods of a range
 * (7d and 30d: one per UTC day; weekly: one per ISO week, Monday to Sunday, 7 of them), oldest
 * first, and each period's row from the account's daily usage figures. Pure: no clock, no I/O.
 */

export const USAGE_RANGES = ["7d", "30d", "weekly"] as const;
export type UsageRange = (typeof USAGE_RANGES)[number];

export const DAY_MS = 86_400_000;

/** One UTC day's figures, as the account keeps them with every ledger write (src/account/usage.ts). */
export interface UsageDay {
  day: number;
  reserved: number;
  charged: number;
  refunded: number;
  completed: number;
  failed: number;
  cancelled: number;
  durationMs: number;
  timed: number;
}

/** Spidra's row (label, date, tokens, requests, crawls, captchas, latency, credits), then ours. */
export interface UsageRow {
  label: string;
  date: string;
  /** AI tokens: none are used by this service's extraction (CSS selectors, Markdown). */
  tokens: number;
  /** Pages fetched: items that completed or failed in the period (retries count again). */
  requests: number;
  /** No crawls here. */
  crawls: number;
  /** No CAPTCHAs are solved here. */
  captchas: number;
  /** Mean fetch time of those items, in ms (0 when none). */
  latency: number;
  /** Credits charged (= creditsCharged): Spidra's "credits consumed". */
  credits: number;
  creditsReserved: number;
  creditsCharged: number;
  creditsRefunded: number;
  items: { completed: number; failed: number; cancelled: number };
}

export interface Period {
  fromDay: number;
  toDay: number;
  label: string;
  date: string;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

export function dayOf(ms: number): number {
  return Math.floor(ms / DAY_MS);
}

function isoDate(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

/** "Apr 16" */
function short(day: number): string {
  const d = new Date(day * DAY_MS);
  return `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}`;
}

/** The range's periods, oldest first, the last one holding `now`. */
export function periods(range: UsageRange, now: number): Period[] {
  const today = dayOf(now);
  if (range === "weekly") {
    // 1970-01-01 was a Thursday: (day + 3) % 7 is 0 on Mondays.
    const monday = today - ((today + 3) % 7);
    return Array.from({ length: 7 }, (_, i) => {
      const fromDay = monday - 7 * (6 - i);
      const toDay = fromDay + 6;
      const [from, to] = [short(fromDay), short(toDay)];
      const sameMonth = from.split(" ")[0] === to.split(" ")[0];
      return {
        fromDay,
        toDay,
        label: sameMonth ? `${from}-${to.split(" ")[1]}` : `${from}-${to}`,
        date: `${from} – ${to}`,
      };
    });
  }
  const days = range === "7d" ? 7 : 30;
  return Array.from({ length: days }, (_, i) => {
    const day = today - (days - 1 - i);
    return { fromDay: day, toDay: day, label: short(day), date: isoDate(day) };
  });
}

/** The rows of `range` from the days' figures (days outside every period are ignored). */
export function usageRows(range: UsageRange, now: number, days: readonly UsageDay[]): UsageRow[] {
  return periods(range, now).map((p) => {
    const inPeriod = days.filter((d) => d.day >= p.fromDay && d.day <= p.toDay);
    const sum = (f: (d: UsageDay) => number) => inPeriod.reduce((n, d) => n + f(d), 0);
    const completed = sum((d) => d.completed);
    const failed = sum((d) => d.failed);
    const timed = sum((d) => d.timed);
    const charged = sum((d) => d.charged);
    return {
      label: p.label,
      date: p.date,
      tokens: 0,
      requests: completed + failed,
      crawls: 0,
      captchas: 0,
      latency: timed === 0 ? 0 : Math.round(sum((d) => d.durationMs) / timed),
      credits: charged,
      creditsReserved: sum((d) => d.reserved),
      creditsCharged: charged,
      creditsRefunded: sum((d) => d.refunded),
      items: { completed, failed, cancelled: sum((d) => d.cancelled) },
    };
  });
}
