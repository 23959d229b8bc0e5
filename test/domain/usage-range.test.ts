import { describe, expect, it } from "vitest";
import { DAY_MS, dayOf, periods, type UsageDay, usageRows } from "../../src/domain/usage-range";

const WED_APR_16_2025 = Date.parse("2025-04-16T15:30:00Z");

function day(iso: string, figures: Partial<UsageDay>): UsageDay {
  return {
    day: dayOf(Date.parse(`${iso}T12:00:00Z`)),
    reserved: 0,
    charged: 0,
    refunded: 0,
    completed: 0,
    failed: 0,
    cancelled: 0,
    durationMs: 0,
    timed: 0,
    ...figures,
  };
}

describe("usage periods", () => {
  it("7d: seven UTC days, oldest first, ending today, labelled like Spidra's (Apr 16, 2025-04-16)", () => {
    const p = periods("7d", WED_APR_16_2025);
    expect(p.map((x) => x.label)).toEqual(["Apr 10", "Apr 11", "Apr 12", "Apr 13", "Apr 14", "Apr 15", "Apr 16"]);
    expect(p.map((x) => x.date)).toEqual([
      "2025-04-10",
      "2025-04-11",
      "2025-04-12",
      "2025-04-13",
      "2025-04-14",
      "2025-04-15",
      "2025-04-16",
    ]);
  });

  it("30d: thirty days ending today", () => {
    const p = periods("30d", WED_APR_16_2025);
    expect(p).toHaveLength(30);
    expect(p[0]!.date).toBe("2025-03-18");
    expect(p[29]!.date).toBe("2025-04-16");
  });

  it("weekly: seven ISO weeks, Monday to Sunday, the last one holding today; a week across months says both", () => {
    const p = periods("weekly", WED_APR_16_2025);
    expect(p).toHaveLength(7);
    expect(p[6]).toMatchObject({ label: "Apr 14-20", date: "Apr 14 – Apr 20" });
    expect(p[4]).toMatchObject({ label: "Mar 31-Apr 6", date: "Mar 31 – Apr 6" });
    expect(p[0]).toMatchObject({ label: "Mar 3-9" });
    for (const x of p) {
      expect(new Date(x.fromDay * DAY_MS).getUTCDay()).toBe(1);
      expect(x.toDay - x.fromDay).toBe(6);
    }
  });

  it("a Monday and a Sunday fall in their own week", () => {
    expect(periods("weekly", Date.parse("2025-04-14T00:00:00Z"))[6]!.label).toBe("Apr 14-20");
    expect(periods("weekly", Date.parse("2025-04-20T23:59:59Z"))[6]!.label).toBe("Apr 14-20");
    expect(periods("weekly", Date.parse("2025-04-21T00:00:00Z"))[6]!.label).toBe("Apr 21-27");
  });
});

describe("usage rows", () => {
  it("sums each period's days; requests are items that ran; latency is their mean fetch time", () => {
    const days = [
      day("2025-04-14", { reserved: 10, charged: 4, refunded: 2, completed: 2, failed: 1, durationMs: 300, timed: 3 }),
      day("2025-04-16", { reserved: 6, charged: 2, refunded: 4, completed: 1, cancelled: 5, durationMs: 50, timed: 1 }),
      day("2025-04-08", { reserved: 99, charged: 99 }), // the week before
    ];
    const weekly = usageRows("weekly", WED_APR_16_2025, days);
    expect(weekly[6]).toEqual({
      label: "Apr 14-20",
      date: "Apr 14 – Apr 20",
      tokens: 0,
      requests: 4,
      crawls: 0,
      captchas: 0,
      latency: 88,
      credits: 6,
      creditsReserved: 16,
      creditsCharged: 6,
      creditsRefunded: 6,
      items: { completed: 3, failed: 1, cancelled: 5 },
    });
    expect(weekly[5]).toMatchObject({ creditsReserved: 99, credits: 99, requests: 0, latency: 0 });
    const daily = usageRows("7d", WED_APR_16_2025, days);
    expect(daily.map((r) => r.credits)).toEqual([0, 0, 0, 0, 4, 0, 2]);
    expect(daily[6]).toMatchObject({ requests: 1, latency: 50, items: { completed: 1, failed: 0, cancelled: 5 } });
  });
});
