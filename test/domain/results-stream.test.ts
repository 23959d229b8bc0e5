import { describe, expect, it } from "vitest";
import type { ItemView } from "../../src/batch/views";
import { csvRow, textCell } from "../../src/http/results/csv";
import { type ItemPage, RESULT_READS_AHEAD, resultsStream } from "../../src/http/results/stream";

function item(index: number): ItemView {
  return {
    uuid: `00000000-0000-4000-8000-${String(index).padStart(12, "0")}`,
    index,
    customId: `c${index}`,
    metadata: null,
    url: `https://example.com/${index}`,
    status: "completed",
    result: null,
    error: null,
    errorCode: null,
    jobId: null,
    screenshotUrl: null,
    creditsUsed: 1,
    attempts: 1,
    startedAt: null,
    finishedAt: null,
    resultUrl: "/r",
    statusCode: 200,
    finalUrl: null,
    durationMs: null,
  };
}

/** A paged source of `total` items, `size` a page, that counts what it was asked for. */
function source(total: number, size: number) {
  const asked = { pages: 0, results: 0, cancelledSeen: false };
  const pageAt = (start: number): ItemPage => {
    const end = Math.min(total, start + size);
    return {
      items: Array.from({ length: end - start }, (_, k) => item(start + k)),
      nextCursor: end < total ? end - 1 : null,
    };
  };
  return {
    asked,
    src: {
      first: pageAt(0),
      page: async (cursor: number) => {
        asked.pages++;
        return pageAt(cursor + 1);
      },
      resultOf: async (it: ItemView) => {
        asked.results++;
        return { body: "x".repeat(500), i: it.index };
      },
      keep: () => true,
      line: (it: ItemView, result: unknown) => `${JSON.stringify({ index: it.index, result })}\n`,
    },
  };
}

describe("resultsStream", () => {
  it("gives every line once, in order, across pages", async () => {
    const { src, asked } = source(1234, 100);
    const text = await new Response(resultsStream(src)).text();
    const lines = text
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l).index);
    expect(lines).toEqual(Array.from({ length: 1234 }, (_, k) => k));
    expect(asked.pages).toBe(12);
    expect(asked.results).toBe(1234);
  });

  it("reads pages only as the reader pulls, and none after the reader cancels", async () => {
    const { src, asked } = source(100_000, 500);
    const reader = resultsStream(src).getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value).startsWith('{"index":0,')).toBe(true);
    // A reader that does not read on: the stream buffers one more pull's lines (about 64 KB), no more.
    await new Promise((r) => setTimeout(r, 100));
    expect(asked.results).toBeLessThan(500);
    await reader.cancel();
    const seen = { ...asked };
    await new Promise((r) => setTimeout(r, 50));
    expect(asked).toEqual(seen);
    expect(asked.pages).toBeLessThanOrEqual(1);
  });

  it("a pull in flight when the reader cancels stops at the next item (no more results or pages read than were under way)", async () => {
    const { src, asked } = source(100_000, 500);
    const slow = {
      ...src,
      resultOf: async (it: ItemView) => {
        await new Promise((r) => setTimeout(r, 2));
        return src.resultOf(it);
      },
    };
    const reader = resultsStream(slow).getReader();
    await reader.read(); // the next pull starts at once, to refill the buffer
    await new Promise((r) => setTimeout(r, 10));
    await reader.cancel();
    const atCancel = asked.results;
    await new Promise((r) => setTimeout(r, 200));
    expect(asked.results).toBeLessThanOrEqual(atCancel + RESULT_READS_AHEAD);
  });

  it("sends the head (the CSV header) first, and only once", async () => {
    const { src } = source(3, 2);
    const text = await new Response(resultsStream({ ...src, head: "H\n" })).text();
    expect(text.split("\n")[0]).toBe("H");
    expect(text.match(/^H$/gm)).toHaveLength(1);
  });

  it("reads at most RESULT_READS_AHEAD results at once, and keeps the lines in order", async () => {
    const { src } = source(600, 250);
    let inFlight = 0;
    let most = 0;
    const slow = {
      ...src,
      keep: (it: ItemView) => it.index % 3 !== 0,
      resultOf: async (it: ItemView) => {
        most = Math.max(most, ++inFlight);
        await new Promise((r) => setTimeout(r, (it.index * 7) % 3)); // finishing out of order
        inFlight--;
        return it.index;
      },
      line: (it: ItemView, result: unknown) => `${it.index}:${result}\n`,
    };
    const text = await new Response(resultsStream(slow)).text();
    const kept = Array.from({ length: 600 }, (_, k) => k).filter((k) => k % 3 !== 0);
    expect(text).toBe(kept.map((k) => `${k}:${k}\n`).join(""));
    expect(most).toBe(RESULT_READS_AHEAD);
  });
});

describe("CSV cells", () => {
  it.each([
    ["plain", "plain"],
    ["a,b", '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ["two\nlines", '"two\nlines"'],
    ["cr\rhere", '"cr\rhere"'],
    ["日本語 🎉", "日本語 🎉"],
    ["=1+2", "'=1+2"],
    ["+1", "'+1"],
    ["-1", "'-1"],
    ["@x", "'@x"],
    ["\tx", "'\tx"],
    ["\rx", '"\'\rx"'],
    ['=HYPERLINK("u","t")', '"\'=HYPERLINK(""u"",""t"")"'],
    ["a=b", "a=b"],
    ["", ""],
  ])("%j is written %j", (value, cell) => {
    expect(textCell(value)).toBe(cell);
  });

  it("null is an empty cell; rows end with CRLF", () => {
    expect(csvRow([textCell(null), "1"])).toBe(",1\r\n");
  });
});
