/**
 * The create fields on the real path (create -> batch object -> queue -> consumer -> fetch):
 * the batch's cookies reach the target as a Cookie header, extractContentOnly shapes the
 * result, and the cookies are gone from the batch object once it has completed.
 */
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { callJson, getBatch, keyHeaders, newAccount, runInBatch, urls } from "../helpers";
import news from "../fixtures/html/news-consent.html?raw";

afterEach(() => vi.restoreAllMocks());

const SITE = "https://shop.example/account";
const COOKIES = "session=s3cr3t-Value_42; theme=dark";

describe("create fields through the queue", () => {
  it("cookies go to the target, main content only shapes the result, and the cookies are erased at the end", async () => {
    expect(env.DISPATCH_PAUSED).toBe("false");
    const seen: (string | null)[] = [];
    vi.spyOn(globalThis, "fetch").mockImplementation(async (_input, init) => {
      seen.push(new Headers(init?.headers).get("cookie"));
      return new Response(news, { headers: { "content-type": "text/html; charset=utf-8" } });
    });
    const { apiKey } = await newAccount(100);
    const created = await callJson("/api/batch/scrape", {
      method: "POST",
      headers: keyHeaders(apiKey),
      body: JSON.stringify({ urls: urls(3, SITE), output: "markdown", cookies: COOKIES, extractContentOnly: true }),
    });
    expect(created.status).toBe(202);
    const batchId: string = created.body.batchId;
    const batch = await vi.waitFor(
      async () => {
        const { body } = await getBatch(apiKey, batchId);
        if (body.status !== "completed") throw new Error(`not yet: ${body.status}`);
        return body;
      },
      { timeout: 15_000, interval: 50 },
    );
    expect(seen).toEqual([COOKIES, COOKIES, COOKIES]);
    expect(batch.completedCount).toBe(3);
    const markdown: string = batch.items[0].result;
    expect(markdown).toContain("Councillors voted 9-4");
    expect(markdown).not.toContain("CONSENT-BANNER-TEXT");
    expect(JSON.stringify(batch)).not.toContain("s3cr3t");
    const sealed = await runInBatch(
      batchId,
      (_o, state) => state.storage.sql.exec<{ c: string | null }>("SELECT cookies_sealed AS c FROM batch").one().c,
    );
    expect(sealed).toBeNull();
  });
});
