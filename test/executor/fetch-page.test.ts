import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { DEFAULT_FETCH_POLICY, fetchPage, type FetchPolicy } from "../../src/executor/fetch-page";

// No test touches the network: every request goes to FakeWeb, which answers from scripted routes.

const POLICY: FetchPolicy = {
  ...DEFAULT_FETCH_POLICY,
  timeoutMs: 2_000,
  userAgent: "TestBot/1.0 (+https://example.org/bot)",
};
const ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8";

interface RecordedCall {
  url: string;
  method: string;
  redirect: string | undefined;
  headers: Headers;
  signal: AbortSignal | null;
}

type Route = (call: RecordedCall) => Response | Promise<Response>;

/** A scripted web: routes by exact URL, records every call, throws on unknown URLs. */
class FakeWeb {
  readonly calls: RecordedCall[] = [];
  private readonly routes = new Map<string, Route>();

  on(url: string, route: Route): this {
    this.routes.set(url, route);
    return this;
  }

  get urls(): string[] {
    return this.calls.map((c) => c.url);
  }

  readonly fetch: typeof fetch = async (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    const call: RecordedCall = {
      url,
      method: init?.method ?? "GET",
      redirect: init?.redirect,
      headers: new Headers(init?.headers),
      signal: init?.signal ?? null,
    };
    this.calls.push(call);
    const route = this.routes.get(url);
    if (route === undefined) throw new Error(`FakeWeb: no route for ${url}`);
    return route(call);
  };
}

const html =
  (text = "<p>hello</p>", headers: Record<string, string> = {}): Route =>
  () =>
    new Response(text, { headers: { "content-type": "text/html; charset=utf-8", ...headers } });

const redirectTo =
  (location: string, status = 302): Route =>
  () =>
    new Response(null, { status, headers: { location } });

const status =
  (code: number, headers: Record<string, string> = {}): Route =>
  () =>
    new Response(`status ${code}`, { status: code, headers: { "content-type": "text/html", ...headers } });

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves when the signal aborts, like a real fetch that never gets headers. */
function waitForAbort(signal: AbortSignal | null): Promise<never> {
  return new Promise((_, reject) => {
    if (signal === null) return;
    signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}

/** A body that yields `chunks` pieces of `chunkSize` bytes, then optionally stalls; records pulls and cancel. */
function scriptedBody(chunks: number, chunkSize: number, stallAfter = false) {
  const state = { pulls: 0, cancelled: false };
  let release: () => void = () => undefined;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      state.pulls++;
      if (state.pulls <= chunks) {
        controller.enqueue(new Uint8Array(chunkSize).fill(0x61));
        return;
      }
      if (stallAfter) await new Promise<void>((resolve) => (release = resolve));
      controller.close();
    },
    cancel() {
      state.cancelled = true;
      release();
    },
  });
  return { stream, state };
}

function fail(error: string): never {
  throw new Error(error);
}

describe("fetchPage: success", () => {
  it("returns raw bytes, status, type, final URL and timing", async () => {
    // On a fake clock, so the timing is exact: the page answers 20 ms after the call.
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    const page = html("<p>caf\u00e9</p>");
    const web = new FakeWeb().on("https://example.com/page", async (call) => {
      await sleep(20);
      return page(call);
    });
    const pending = fetchPage("https://example.com/page", POLICY, web.fetch);
    await vi.advanceTimersByTimeAsync(20);
    const result = await pending.finally(() => vi.useRealTimers());
    if (!result.ok) fail(`expected success, got ${result.code}`);
    expect(result).toMatchObject({
      url: "https://example.com/page",
      finalUrl: "https://example.com/page",
      statusCode: 200,
      contentType: "text/html; charset=utf-8",
      redirects: 0,
    });
    expect(new TextDecoder().decode(result.body)).toBe("<p>caf\u00e9</p>");
    expect(result.startedAt).toBe(1_700_000_000_000);
    expect(result.durationMs).toBe(20);
  });

  it("returns bytes undecoded, whatever the charset", async () => {
    const latin1 = new Uint8Array([0x3c, 0x70, 0x3e, 0xe9, 0xff, 0x00]);
    const web = new FakeWeb().on(
      "https://example.com/",
      () => new Response(latin1, { headers: { "content-type": "text/html; charset=iso-8859-1" } }),
    );
    const result = await fetchPage("https://example.com/", POLICY, web.fetch);
    expect(result.ok && [...result.body]).toEqual([...latin1]);
  });

  it("sends one GET with the policy's User-Agent, the HTML Accept header, manual redirects and a signal", async () => {
    const web = new FakeWeb().on("https://example.com/", html());
    await fetchPage("https://example.com/", POLICY, web.fetch);
    expect(web.calls).toHaveLength(1);
    const [call] = web.calls;
    expect(call?.method).toBe("GET");
    expect(call?.redirect).toBe("manual");
    expect(call?.headers.get("user-agent")).toBe(POLICY.userAgent);
    expect(call?.headers.get("accept")).toBe(ACCEPT);
    expect(call?.signal).toBeInstanceOf(AbortSignal);
  });

  it("accepts an empty body", async () => {
    const web = new FakeWeb().on("https://example.com/", () => new Response(null, { status: 204 }));
    const result = await fetchPage("https://example.com/", POLICY, web.fetch);
    expect(result).toMatchObject({ ok: true, statusCode: 204, contentType: null });
    expect(result.ok && result.body.byteLength).toBe(0);
  });

  it.each(["text/html", "TEXT/HTML; charset=Shift_JIS", "application/xhtml+xml", "text/plain; charset=utf-8", ""])(
    "accepts content type %j",
    async (contentType) => {
      const web = new FakeWeb().on(
        "https://example.com/",
        () => new Response("x", { headers: { "content-type": contentType } }),
      );
      const result = await fetchPage("https://example.com/", POLICY, web.fetch);
      expect(result.ok).toBe(true);
    },
  );

  it("accepts a response without Content-Type", async () => {
    const web = new FakeWeb().on("https://example.com/", () => new Response(new Uint8Array([0x78])));
    const result = await fetchPage("https://example.com/", POLICY, web.fetch);
    expect(result).toMatchObject({ ok: true, contentType: null });
  });
});

describe("fetchPage: redirects", () => {
  it("follows a relative Location, resolved against the current URL", async () => {
    const web = new FakeWeb()
      .on("https://example.com/a/b", redirectTo("../c?x=1"))
      .on("https://example.com/c?x=1", html());
    const result = await fetchPage("https://example.com/a/b", POLICY, web.fetch);
    expect(result).toMatchObject({
      ok: true,
      url: "https://example.com/a/b",
      finalUrl: "https://example.com/c?x=1",
      redirects: 1,
    });
    expect(web.urls).toEqual(["https://example.com/a/b", "https://example.com/c?x=1"]);
  });

  it("follows absolute and relative hops in one chain and counts them", async () => {
    const web = new FakeWeb()
      .on("http://example.com/", redirectTo("https://www.example.com/", 301))
      .on("https://www.example.com/", redirectTo("/home", 307))
      .on("https://www.example.com/home", html());
    const result = await fetchPage("http://example.com/", POLICY, web.fetch);
    expect(result).toMatchObject({ ok: true, finalUrl: "https://www.example.com/home", redirects: 2, statusCode: 200 });
    expect(web.urls).toEqual(["http://example.com/", "https://www.example.com/", "https://www.example.com/home"]);
  });

  it.each([301, 302, 303, 307, 308])("follows %i", async (code) => {
    const web = new FakeWeb()
      .on("https://example.com/", redirectTo("/next", code))
      .on("https://example.com/next", html());
    const result = await fetchPage("https://example.com/", POLICY, web.fetch);
    expect(result).toMatchObject({ ok: true, finalUrl: "https://example.com/next", redirects: 1 });
  });

  it("a 303 (as after a form POST) leads to a GET with the same headers", async () => {
    const web = new FakeWeb()
      .on("https://example.com/submit", redirectTo("/result", 303))
      .on("https://example.com/result", html());
    await fetchPage("https://example.com/submit", POLICY, web.fetch);
    expect(web.calls.map((c) => c.method)).toEqual(["GET", "GET"]);
    expect(web.calls[1]?.headers.get("user-agent")).toBe(POLICY.userAgent);
    expect(web.calls[1]?.headers.get("accept")).toBe(ACCEPT);
  });

  it("follows exactly maxRedirects hops", async () => {
    const web = chain(5);
    const result = await fetchPage("https://example.com/0", POLICY, web.fetch);
    expect(result).toMatchObject({ ok: true, redirects: 5, finalUrl: "https://example.com/5" });
  });

  it("refuses hop maxRedirects + 1 without requesting it", async () => {
    const web = chain(6);
    const result = await fetchPage("https://example.com/0", POLICY, web.fetch);
    expect(result).toMatchObject({
      ok: false,
      retryable: false,
      code: "TOO_MANY_REDIRECTS",
      statusCode: 302,
      finalUrl: "https://example.com/5",
    });
    expect(web.urls).not.toContain("https://example.com/6");
    expect(web.calls).toHaveLength(6);
  });

  it("with maxRedirects 0 refuses the first redirect", async () => {
    const web = chain(1);
    const result = await fetchPage("https://example.com/0", { ...POLICY, maxRedirects: 0 }, web.fetch);
    expect(result).toMatchObject({ ok: false, code: "TOO_MANY_REDIRECTS" });
    expect(web.calls).toHaveLength(1);
  });

  it("a 3xx without Location is a permanent HTTP_3XX_NO_LOCATION", async () => {
    const web = new FakeWeb().on("https://example.com/", () => new Response(null, { status: 302 }));
    const result = await fetchPage("https://example.com/", POLICY, web.fetch);
    expect(result).toMatchObject({
      ok: false,
      retryable: false,
      code: "HTTP_3XX_NO_LOCATION",
      statusCode: 302,
      finalUrl: "https://example.com/",
    });
  });

  it("a 300 with Location is an answer, not a hop", async () => {
    const web = new FakeWeb().on(
      "https://example.com/",
      () => new Response(null, { status: 300, headers: { location: "/a" } }),
    );
    const result = await fetchPage("https://example.com/", POLICY, web.fetch);
    expect(result).toMatchObject({ ok: false, retryable: false, code: "HTTP_300", statusCode: 300 });
    expect(web.calls).toHaveLength(1);
  });

  it("an unparseable Location is a permanent HTTP_3XX_BAD_LOCATION", async () => {
    const web = new FakeWeb().on("https://example.com/", redirectTo("http://[oops/"));
    const result = await fetchPage("https://example.com/", POLICY, web.fetch);
    expect(result).toMatchObject({ ok: false, retryable: false, code: "HTTP_3XX_BAD_LOCATION", statusCode: 302 });
    expect(web.calls).toHaveLength(1);
  });
});

/** https://example.com/0 -> /1 -> ... -> /n, which answers HTML. */
function chain(n: number): FakeWeb {
  const web = new FakeWeb();
  for (let i = 0; i < n; i++) web.on(`https://example.com/${i}`, redirectTo(`/${i + 1}`));
  return web.on(`https://example.com/${n}`, html());
}

describe("fetchPage: target safety", () => {
  it.each([
    ["http://127.0.0.1/", /loopback/],
    ["http://169.254.169.254/latest/meta-data/", /cloud metadata/],
    ["http://[::1]/", /loopback/],
    ["http://10.0.0.7/admin", /private/],
    ["http://[::ffff:0:a9fe:a9fe]/latest/meta-data/", /IPv4-translated address ::ffff:0:a9fe:a9fe /],
    ["http://[::ffff:0:127.0.0.1]/", /IPv4-translated address ::ffff:0:7f00:1 /],
    ["http://[64:ff9b::a9fe:a9fe]/", /NAT64 .* embeds cloud metadata/],
    ["http://[2002:a00:1::]/", /6to4 .* embeds private address 10\.0\.0\.1/],
    ["http://[5f00::1]/", /SRv6 SID address 5f00::1 /],
    ["file:///etc/passwd", /scheme file/],
  ])("refuses a redirect to %s without requesting it", async (target, reason) => {
    const web = new FakeWeb().on("https://example.com/", redirectTo(target)).on(target, html("must never be fetched"));
    const result = await fetchPage("https://example.com/", POLICY, web.fetch);
    expect(result).toEqual({
      ok: false,
      retryable: false,
      code: "BLOCKED_TARGET",
      message: expect.stringMatching(reason),
      statusCode: 302,
      finalUrl: "https://example.com/",
      durationMs: expect.any(Number),
    });
    expect(web.urls).toEqual(["https://example.com/"]);
  });

  it("resolves a scheme-relative Location before checking it", async () => {
    const web = new FakeWeb()
      .on("https://example.com/", redirectTo("//169.254.169.254/latest"))
      .on("http://169.254.169.254/latest", html());
    const result = await fetchPage("https://example.com/", POLICY, web.fetch);
    expect(result).toMatchObject({ ok: false, code: "BLOCKED_TARGET" });
    expect(web.calls).toHaveLength(1);
  });

  it("follows a redirect to loopback when allowLoopback is on", async () => {
    const web = new FakeWeb()
      .on("https://example.com/", redirectTo("http://127.0.0.1:8787/page"))
      .on("http://127.0.0.1:8787/page", html());
    const result = await fetchPage("https://example.com/", { ...POLICY, allowLoopback: true }, web.fetch);
    expect(result).toMatchObject({ ok: true, finalUrl: "http://127.0.0.1:8787/page", redirects: 1 });
  });

  it("fetches a loopback start URL only when allowLoopback is on", async () => {
    const web = new FakeWeb().on("http://localhost:8787/", html());
    const refused = await fetchPage("http://localhost:8787/", POLICY, web.fetch);
    expect(refused).toMatchObject({ ok: false, retryable: false, code: "BLOCKED_TARGET" });
    expect(web.calls).toHaveLength(0);
    const allowed = await fetchPage("http://localhost:8787/", { ...POLICY, allowLoopback: true }, web.fetch);
    expect(allowed.ok).toBe(true);
  });

  it("refuses a redirect to an IPv4-translated address even with allowLoopback on", async () => {
    const web = new FakeWeb().on("https://example.com/", redirectTo("http://[::ffff:0:7f00:1]:8787/"));
    const result = await fetchPage("https://example.com/", { ...POLICY, allowLoopback: true }, web.fetch);
    expect(result).toMatchObject({
      ok: false,
      code: "BLOCKED_TARGET",
      message: expect.stringContaining("IPv4-translated"),
    });
    expect(web.calls).toHaveLength(1);
  });

  it("allowLoopback does not open metadata addresses", async () => {
    const web = new FakeWeb().on("https://example.com/", redirectTo("http://169.254.169.254/"));
    const result = await fetchPage("https://example.com/", { ...POLICY, allowLoopback: true }, web.fetch);
    expect(result).toMatchObject({ ok: false, code: "BLOCKED_TARGET" });
    expect(web.calls).toHaveLength(1);
  });

  it.each(["ftp://example.com/file", "javascript:alert(1)", "data:text/html,<p>x</p>", "not a url", "/relative"])(
    "refuses start URL %j without any request",
    async (url) => {
      const web = new FakeWeb();
      const result = await fetchPage(url, POLICY, web.fetch);
      expect(result).toEqual({
        ok: false,
        retryable: false,
        code: "BLOCKED_TARGET",
        message: expect.any(String),
        durationMs: expect.any(Number),
      });
      expect(web.calls).toHaveLength(0);
    },
  );
});

describe("fetchPage: status classification", () => {
  it.each([400, 401, 403, 404, 410, 451])("%i is permanent", async (code) => {
    const web = new FakeWeb()
      .on("https://example.com/old", redirectTo("/gone"))
      .on("https://example.com/gone", status(code));
    const result = await fetchPage("https://example.com/old", POLICY, web.fetch);
    expect(result).toMatchObject({
      ok: false,
      retryable: false,
      code: `HTTP_${code}`,
      statusCode: code,
      finalUrl: "https://example.com/gone",
    });
  });

  it.each([408, 429, 500, 502, 503, 504, 599])("%i is retryable", async (code) => {
    const web = new FakeWeb().on("https://example.com/", status(code));
    const result = await fetchPage("https://example.com/", POLICY, web.fetch);
    expect(result).toMatchObject({
      ok: false,
      retryable: true,
      code: `HTTP_${code}`,
      statusCode: code,
      finalUrl: "https://example.com/",
    });
    expect(result).not.toHaveProperty("retryAfterSeconds");
  });

  it("429 with Retry-After: 7 waits 7 seconds", async () => {
    const web = new FakeWeb().on("https://example.com/", status(429, { "retry-after": "7" }));
    const result = await fetchPage("https://example.com/", POLICY, web.fetch);
    expect(result).toMatchObject({
      ok: false,
      retryable: true,
      code: "HTTP_429",
      statusCode: 429,
      retryAfterSeconds: 7,
    });
  });

  it("429 with Retry-After as an HTTP date waits until then", async () => {
    // On a fake clock standing at a whole second, 120 s before the date: exactly 120, and
    // 121 with the clock 0.5 s earlier (a part second counts as a whole one).
    for (const [now, seconds] of [
      [1_700_000_000_000, 120],
      [1_699_999_999_500, 121],
    ] as const) {
      vi.useFakeTimers({ now });
      try {
        const web = new FakeWeb().on(
          "https://example.com/",
          status(429, { "retry-after": new Date(1_700_000_120_000).toUTCString() }),
        );
        expect(await fetchPage("https://example.com/", POLICY, web.fetch)).toMatchObject({
          code: "HTTP_429",
          retryAfterSeconds: seconds,
        });
      } finally {
        vi.useRealTimers();
      }
    }
  });

  it.each([
    ["99999", 3600],
    [new Date(Date.now() + 7 * 86_400_000).toUTCString(), 3600],
    ["Thu, 01 Jan 1970 00:00:00 GMT", 0],
    ["  12  ", 12],
    ["0", 0],
  ])("Retry-After %j -> %i seconds", async (header, seconds) => {
    const web = new FakeWeb().on("https://example.com/", status(429, { "retry-after": header }));
    const result = await fetchPage("https://example.com/", POLICY, web.fetch);
    expect(result).toMatchObject({ code: "HTTP_429", retryAfterSeconds: seconds });
  });

  it.each(["soon", "-5", "7.5", "1e3", ""])("ignores a Retry-After of %j", async (header) => {
    const web = new FakeWeb().on("https://example.com/", status(429, { "retry-after": header }));
    const result = await fetchPage("https://example.com/", POLICY, web.fetch);
    expect(result).toMatchObject({ code: "HTTP_429", retryable: true });
    expect(result).not.toHaveProperty("retryAfterSeconds");
  });

  it("503 passes its Retry-After on too", async () => {
    const web = new FakeWeb().on("https://example.com/", status(503, { "retry-after": "30" }));
    const result = await fetchPage("https://example.com/", POLICY, web.fetch);
    expect(result).toMatchObject({ code: "HTTP_503", retryable: true, retryAfterSeconds: 30 });
  });
});

describe("fetchPage: timeouts", () => {
  const FAST: FetchPolicy = { ...POLICY, timeoutMs: 50 };
  // On a fake clock: the deadline may fire only once 50 ms have been advanced, and then must;
  // durationMs is exactly the time advanced. No bound on how long the machine took.
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  /** Runs fetchPage and advances the fake clock to just before the deadline, then to it. */
  async function atDeadline(url: string, policy: FetchPolicy, web: FakeWeb) {
    let settled = false;
    const result = fetchPage(url, policy, web.fetch).finally(() => (settled = true));
    await vi.advanceTimersByTimeAsync(policy.timeoutMs - 1);
    expect(settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(settled).toBe(true);
    return result;
  }

  it("times out waiting for headers (fetch honours the signal)", async () => {
    const web = new FakeWeb().on("https://example.com/", (call) => waitForAbort(call.signal));
    const result = await atDeadline("https://example.com/", FAST, web);
    expect(result).toMatchObject({
      ok: false,
      retryable: true,
      code: "TIMEOUT",
      finalUrl: "https://example.com/",
      durationMs: 50,
    });
  });

  it("times out waiting for headers even when fetch ignores the signal", async () => {
    let answered = false;
    const web = new FakeWeb().on("https://example.com/", async () => {
      await sleep(500);
      answered = true;
      return new Response("<p>late</p>", { headers: { "content-type": "text/html" } });
    });
    const result = await atDeadline("https://example.com/", FAST, web);
    expect(result).toMatchObject({ ok: false, retryable: true, code: "TIMEOUT", durationMs: 50 });
    expect(answered).toBe(false);
  });

  it("times out on a body that stalls after the first chunk, and cancels it", async () => {
    const { stream, state } = scriptedBody(1, 10, true);
    const web = new FakeWeb().on(
      "https://example.com/",
      () => new Response(stream, { headers: { "content-type": "text/html" } }),
    );
    const result = await atDeadline("https://example.com/", FAST, web);
    expect(result).toMatchObject({
      ok: false,
      retryable: true,
      code: "TIMEOUT",
      statusCode: 200,
      finalUrl: "https://example.com/",
      durationMs: 50,
    });
    await vi.advanceTimersByTimeAsync(0);
    expect(state.cancelled).toBe(true);
  });

  it("a body that trickles a byte at a time, never stalling, is cut by the one deadline", async () => {
    let sent = 0;
    const trickle = new ReadableStream<Uint8Array>({
      async pull(controller) {
        await sleep(5);
        sent++;
        controller.enqueue(new Uint8Array([0x61]));
      },
    });
    const web = new FakeWeb().on(
      "https://example.com/",
      () => new Response(trickle, { headers: { "content-type": "text/html" } }),
    );
    const result = await atDeadline("https://example.com/", FAST, web);
    expect(result).toMatchObject({ ok: false, retryable: true, code: "TIMEOUT", statusCode: 200, durationMs: 50 });
    expect(sent).toBeGreaterThan(1); // it kept sending: no read ever waited long
  });

  it("one deadline covers the whole redirect chain", async () => {
    const slowHop =
      (route: Route): Route =>
      async (call) => {
        await sleep(30);
        return route(call);
      };
    const web = new FakeWeb()
      .on("https://example.com/0", slowHop(redirectTo("/1")))
      .on("https://example.com/1", slowHop(redirectTo("/2")))
      .on("https://example.com/2", slowHop(html()));
    // Three hops of 30 ms each; the deadline at 75 ms falls in the third.
    const result = await atDeadline("https://example.com/0", { ...POLICY, timeoutMs: 75 }, web);
    expect(result).toMatchObject({ ok: false, code: "TIMEOUT", retryable: true, durationMs: 75 });
    expect(web.urls).toEqual(["https://example.com/0", "https://example.com/1", "https://example.com/2"]);
  });
});

describe("fetchPage: body size and type", () => {
  const SMALL: FetchPolicy = { ...POLICY, maxBytes: 4_096 };

  it("refuses by Content-Length before reading", async () => {
    const { stream, state } = scriptedBody(3, 2_048);
    const web = new FakeWeb().on(
      "https://example.com/",
      () => new Response(stream, { headers: { "content-type": "text/html", "content-length": "6144" } }),
    );
    const result = await fetchPage("https://example.com/", SMALL, web.fetch);
    expect(result).toMatchObject({
      ok: false,
      retryable: false,
      code: "TOO_LARGE",
      statusCode: 200,
      finalUrl: "https://example.com/",
    });
    expect(result.ok === false && result.message).toMatch(/Content-Length 6144/);
    await sleep(0);
    expect(state.cancelled).toBe(true);
  });

  it("stops a streamed body without Content-Length once it passes the cap", async () => {
    const { stream, state } = scriptedBody(100, 1_024);
    const web = new FakeWeb().on(
      "https://example.com/",
      () => new Response(stream, { headers: { "content-type": "text/html" } }),
    );
    const result = await fetchPage("https://example.com/", SMALL, web.fetch);
    expect(result).toMatchObject({ ok: false, retryable: false, code: "TOO_LARGE", statusCode: 200 });
    await sleep(0);
    expect(state.cancelled).toBe(true);
    expect(state.pulls).toBeLessThan(100);
  });

  it("counts the decoded bytes of a compressed body: a gzip bomb stops at the cap with TOO_LARGE", async () => {
    // 16 MiB of zeros, gzipped (about 16 kB), made here. workerd's fetch decodes gzip and br
    // bodies itself, so the fake does too: the caller reads decoded bytes, as in production,
    // while Content-Length still gives the small compressed size.
    const zeros = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 16; i++) controller.enqueue(new Uint8Array(1024 * 1024));
        controller.close();
      },
    });
    const compressed = new Uint8Array(
      await new Response(zeros.pipeThrough(new CompressionStream("gzip"))).arrayBuffer(),
    );
    expect(compressed.byteLength).toBeLessThan(1024 * 1024); // under the cap: Content-Length does not stop it
    let decoded = 0;
    const counting = new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        decoded += chunk.byteLength;
        controller.enqueue(chunk);
      },
    });
    const web = new FakeWeb().on(
      "https://example.com/bomb",
      () =>
        new Response(
          new Response(compressed).body!.pipeThrough(new DecompressionStream("gzip")).pipeThrough(counting),
          {
            headers: {
              "content-type": "text/html",
              "content-encoding": "gzip",
              "content-length": String(compressed.byteLength),
            },
          },
        ),
    );
    const result = await fetchPage("https://example.com/bomb", { ...POLICY, maxBytes: 1024 * 1024 }, web.fetch);
    expect(result).toMatchObject({ ok: false, retryable: false, code: "TOO_LARGE", statusCode: 200 });
    expect(result.ok === false && result.message).toMatch(/body is over the 1048576-byte cap/);
    // Decoding stopped soon after the cap (a few chunks of read-ahead), far from 16 MiB.
    expect(decoded).toBeLessThan(4 * 1024 * 1024);
  });

  it("accepts a body of exactly maxBytes", async () => {
    const { stream } = scriptedBody(4, 1_024);
    const web = new FakeWeb().on(
      "https://example.com/",
      () => new Response(stream, { headers: { "content-type": "text/html" } }),
    );
    const result = await fetchPage("https://example.com/", SMALL, web.fetch);
    expect(result.ok && result.body.byteLength).toBe(4_096);
  });

  it.each(["image/png", "application/pdf", "application/json", "application/octet-stream", "text/css", "video/mp4"])(
    "refuses %s without reading the body",
    async (contentType) => {
      const { stream, state } = scriptedBody(3, 100);
      const web = new FakeWeb().on(
        "https://example.com/",
        () => new Response(stream, { headers: { "content-type": contentType } }),
      );
      const result = await fetchPage("https://example.com/", POLICY, web.fetch);
      expect(result).toMatchObject({
        ok: false,
        retryable: false,
        code: "UNSUPPORTED_CONTENT_TYPE",
        statusCode: 200,
        finalUrl: "https://example.com/",
      });
      await sleep(0);
      expect(state.cancelled).toBe(true);
    },
  );
});

describe("fetchPage: network errors", () => {
  it("a throwing fetch is a retryable FETCH_FAILED with the error's message", async () => {
    const web = new FakeWeb().on("https://example.com/", () => {
      throw new TypeError("Network connection lost.");
    });
    const result = await fetchPage("https://example.com/", POLICY, web.fetch);
    expect(result).toEqual({
      ok: false,
      retryable: true,
      code: "FETCH_FAILED",
      message: "Network connection lost.",
      finalUrl: "https://example.com/",
      durationMs: expect.any(Number),
    });
  });

  it("a fetch that throws synchronously is caught too", async () => {
    const throwing: typeof fetch = () => {
      throw new Error("boom");
    };
    const result = await fetchPage("https://example.com/", POLICY, throwing);
    expect(result).toMatchObject({ ok: false, retryable: true, code: "FETCH_FAILED", message: "boom" });
  });

  it("a body stream that errors midway is a retryable FETCH_FAILED with the status", async () => {
    let sent = false;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent) return controller.error(new Error("connection reset"));
        sent = true;
        controller.enqueue(new Uint8Array([0x3c]));
      },
    });
    const web = new FakeWeb().on(
      "https://example.com/",
      () => new Response(stream, { headers: { "content-type": "text/html" } }),
    );
    const result = await fetchPage("https://example.com/", POLICY, web.fetch);
    expect(result).toMatchObject({
      ok: false,
      retryable: true,
      code: "FETCH_FAILED",
      statusCode: 200,
      message: expect.stringMatching(/connection reset/),
    });
  });
});

describe("DEFAULT_FETCH_POLICY", () => {
  it("has the documented defaults", () => {
    expect(DEFAULT_FETCH_POLICY).toMatchObject({
      timeoutMs: 15_000,
      maxBytes: 5 * 1024 * 1024,
      maxRedirects: 5,
      allowLoopback: false,
    });
    expect(DEFAULT_FETCH_POLICY.userAgent).toMatch(/^BatchScrapeBot\/1\.0 \(\+https:\/\//);
  });
});
