/**
 * A batch's cookies in the executor: opened from the lease just before the fetch, sent as a
 * Cookie header to the item URL's own origin only, never across a redirect to another origin,
 * never logged; a lease whose cookies do not open fetches nothing.
 */
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Env } from "../../src/env";
import { DEFAULT_FETCH_POLICY, fetchPage } from "../../src/executor/fetch-page";
import { runItem } from "../../src/executor/run-item";
import { sealCookies } from "../../src/lib/sealed-cookies";

const COOKIES = "session=s3cr3t-Value_42; theme=dark";
const POLICY = { ...DEFAULT_FETCH_POLICY, timeoutMs: 2_000 };

/** A scripted web: each URL answers a page or a redirect; records the Cookie header of every request. */
function web(routes: Record<string, string | { redirect: string }>) {
  const calls: { url: string; cookie: string | null }[] = [];
  const fetcher: typeof fetch = async (input, init) => {
    const url = String(input);
    calls.push({ url, cookie: new Headers(init?.headers).get("cookie") });
    const route = routes[url];
    if (route === undefined) throw new Error(`no route for ${url}`);
    if (typeof route === "string") return new Response(route, { headers: { "content-type": "text/html" } });
    return new Response(null, { status: 302, headers: { location: route.redirect } });
  };
  return { calls, fetcher };
}

describe("fetchPage with cookies", () => {
  it("sends them to the item's origin, on every hop that stays there", async () => {
    const { calls, fetcher } = web({
      "https://app.example.com/dash": { redirect: "/login?next=dash" },
      "https://app.example.com/login?next=dash": "<p>ok</p>",
    });
    expect((await fetchPage("https://app.example.com/dash", POLICY, fetcher, COOKIES)).ok).toBe(true);
    expect(calls).toEqual([
      { url: "https://app.example.com/dash", cookie: COOKIES },
      { url: "https://app.example.com/login?next=dash", cookie: COOKIES },
    ]);
  });

  it.each([
    ["another site", "https://tracker.example.net/set"],
    ["a subdomain", "https://cdn.app.example.com/set"],
    ["another scheme", "http://app.example.com/set"],
    ["another port", "https://app.example.com:8443/set"],
  ])("does not send them across a redirect to %s", async (_label, elsewhere) => {
    const { calls, fetcher } = web({
      "https://app.example.com/dash": { redirect: elsewhere },
      [elsewhere]: "<p>elsewhere</p>",
    });
    await fetchPage("https://app.example.com/dash", POLICY, fetcher, COOKIES);
    expect(calls.map((c) => c.cookie)).toEqual([COOKIES, null]);
  });

  it("sends them again only when a redirect comes back to the item's origin", async () => {
    const { calls, fetcher } = web({
      "https://app.example.com/a": { redirect: "https://sso.example.org/check" },
      "https://sso.example.org/check": { redirect: "https://app.example.com/b" },
      "https://app.example.com/b": "<p>back</p>",
    });
    await fetchPage("https://app.example.com/a", POLICY, fetcher, COOKIES);
    expect(calls.map((c) => c.cookie)).toEqual([COOKIES, null, COOKIES]);
  });

  it("sends no Cookie header without cookies", async () => {
    const { calls, fetcher } = web({ "https://app.example.com/": "<p>x</p>" });
    await fetchPage("https://app.example.com/", POLICY, fetcher);
    expect(calls).toEqual([{ url: "https://app.example.com/", cookie: null }]);
  });
});

describe("runItem with a lease's sealed cookies", () => {
  afterEach(() => vi.restoreAllMocks());

  const lease = async (cookies: string | null, batchId = crypto.randomUUID()) => ({
    action: "run" as const,
    batchId,
    itemId: crypto.randomUUID(),
    attempt: 1,
    url: "https://app.example.com/dash",
    output: "json" as const,
    selectors: null,
    leaseExpiresAt: Date.now() + 60_000,
    cookies: cookies === null ? null : await sealCookies(cookies, env.COOKIE_SECRET!, batchId),
  });

  it("opens them and sends them, and logs nothing of them", async () => {
    const lines: string[] = [];
    vi.spyOn(console, "log").mockImplementation((...args) => void lines.push(args.join(" ")));
    vi.spyOn(console, "error").mockImplementation((...args) => void lines.push(args.join(" ")));
    const { calls, fetcher } = web({ "https://app.example.com/dash": "<p>Revenue: 42</p>" });
    const outcome = await runItem(await lease(COOKIES), env as Env, fetcher);
    expect(outcome.ok).toBe(true);
    expect(calls).toEqual([{ url: "https://app.example.com/dash", cookie: COOKIES }]);
    expect(lines.join("\n")).not.toContain("s3cr3t");
    expect(JSON.stringify(outcome)).not.toContain("s3cr3t");
  });

  it("fetches nothing when they do not open (another secret, or another batch's), failing COOKIES_UNREADABLE", async () => {
    const { calls, fetcher } = web({ "https://app.example.com/dash": "<p>x</p>" });
    const sealed = await lease(COOKIES);
    const cases = [
      runItem(sealed, { ...env, COOKIE_SECRET: "another-secret-of-at-least-32-characters!" } as Env, fetcher),
      runItem(sealed, { ...env, COOKIE_SECRET: undefined } as Env, fetcher),
      runItem({ ...sealed, batchId: crypto.randomUUID() }, env as Env, fetcher),
    ];
    for (const outcome of await Promise.all(cases)) {
      expect(outcome).toMatchObject({ ok: false, retryable: false, error: { code: "COOKIES_UNREADABLE" } });
      expect(JSON.stringify(outcome)).not.toContain("s3cr3t");
    }
    expect(calls).toEqual([]);
  });

  it("sends no Cookie header for a batch without cookies", async () => {
    const { calls, fetcher } = web({ "https://app.example.com/dash": "<p>x</p>" });
    await runItem(await lease(null), env as Env, fetcher);
    expect(calls).toEqual([{ url: "https://app.example.com/dash", cookie: null }]);
  });
});
