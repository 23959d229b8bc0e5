/** Executor settings from vars: defaults, and values that are refused. */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Env } from "../../src/env";
import { DEFAULT_EXTRACTION_LIMITS } from "../../src/executor/budget";
import { extractionLimits, fetchPolicy } from "../../src/executor/config";
import { DEFAULT_FETCH_POLICY } from "../../src/executor/fetch-page";

const policy = (vars: Partial<Env>) => fetchPolicy(vars as Env);

describe("fetchPolicy", () => {
  it("takes the User-Agent from FETCH_USER_AGENT, and keeps the default for a missing or unusable one", () => {
    expect(policy({ FETCH_USER_AGENT: "AcmeBot/2.0 (+https://acme.example/bot)" }).userAgent).toBe(
      "AcmeBot/2.0 (+https://acme.example/bot)",
    );
    expect(policy({}).userAgent).toBe(DEFAULT_FETCH_POLICY.userAgent);
    for (const bad of ["", "two\nlines", "x".repeat(257), "naïve"])
      expect(policy({ FETCH_USER_AGENT: bad }).userAgent).toBe(DEFAULT_FETCH_POLICY.userAgent);
  });

  it("reads the numeric limits, falling back on invalid values", () => {
    expect(policy({ FETCH_TIMEOUT_MS: "2000", FETCH_MAX_BYTES: "1024" })).toMatchObject({
      timeoutMs: 2000,
      maxBytes: 1024,
    });
    expect(policy({ FETCH_TIMEOUT_MS: "-5", FETCH_MAX_BYTES: "lots" })).toMatchObject({
      timeoutMs: DEFAULT_FETCH_POLICY.timeoutMs,
      maxBytes: DEFAULT_FETCH_POLICY.maxBytes,
    });
  });
});

describe("extractionLimits", () => {
  it("reads every EXTRACT_ var, falling back to the default on a missing or invalid value", () => {
    const vars = {
      EXTRACT_MAX_ELEMENTS: "10",
      EXTRACT_MAX_TEXT_BYTES: "20",
      EXTRACT_MAX_OUTPUT_BYTES: "30",
      EXTRACT_MAX_SELECTOR_BYTES: "40",
      EXTRACT_TIMEOUT_MS: "50",
    };
    expect(extractionLimits(vars as Env)).toEqual({
      maxElements: 10,
      maxTextBytes: 20,
      maxOutputBytes: 30,
      maxSelectorBytes: 40,
      timeoutMs: 50,
    });
    expect(extractionLimits({} as Env)).toEqual(DEFAULT_EXTRACTION_LIMITS);
    const bad = {
      EXTRACT_MAX_ELEMENTS: "0",
      EXTRACT_MAX_TEXT_BYTES: "-1",
      EXTRACT_MAX_OUTPUT_BYTES: "1.5",
      EXTRACT_MAX_SELECTOR_BYTES: "lots",
      EXTRACT_TIMEOUT_MS: "",
    };
    expect(extractionLimits(bad as Env)).toEqual(DEFAULT_EXTRACTION_LIMITS);
  });

  it("wrangler.toml's values are the defaults", () => {
    expect(extractionLimits(env as Env)).toEqual(DEFAULT_EXTRACTION_LIMITS);
  });
});
