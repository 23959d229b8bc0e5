/** Executor settings from vars: defaults, and values that are refused. */
import { describe, expect, it } from "vitest";
import type { Env } from "../../src/env";
import { fetchPolicy } from "../../src/executor/config";
import { DEFAULT_FETCH_POLICY } from "../../src/executor/fetch-page";

const policy = (vars: Partial<Env>) => fetchPolicy(vars as Env);

describe("fetchPolicy", () => {
  it("takes the User-Agent from FETCH_USER_AGENT, and keeps the default for a missing or unusable one", () => {
    expect(policy({ FETCH_USER_AGENT: "AcmeBot/2.0 (+https://acme.example/bot)" }).userAgent).toBe("AcmeBot/2.0 (+https://acme.example/bot)");
    expect(policy({}).userAgent).toBe(DEFAULT_FETCH_POLICY.userAgent);
    for (const bad of ["", "two\nlines", "x".repeat(257), "naïve"]) expect(policy({ FETCH_USER_AGENT: bad }).userAgent).toBe(DEFAULT_FETCH_POLICY.userAgent);
  });

  it("reads the numeric limits, falling back on invalid values", () => {
    expect(policy({ FETCH_TIMEOUT_MS: "2000", FETCH_MAX_BYTES: "1024" })).toMatchObject({ timeoutMs: 2000, maxBytes: 1024 });
    expect(policy({ FETCH_TIMEOUT_MS: "-5", FETCH_MAX_BYTES: "lots" })).toMatchObject({ timeoutMs: DEFAULT_FETCH_POLICY.timeoutMs, maxBytes: DEFAULT_FETCH_POLICY.maxBytes });
  });
});
