import { env } from "cloudflare:workers";
import { createExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { createApp } from "../../src/http/app";
import { createBatch, getCredits, keyHeaders, newAccount } from "../helpers";
import { expectError, ledger, listBatches } from "./support";

/** The account as a refused create must leave it: same credits, same ledger, no batch. */
async function snapshot(apiKey: string) {
  return {
    credits: await getCredits(apiKey),
    ledger: (await ledger(apiKey)).body.entries,
    batches: (await listBatches(apiKey)).body,
  };
}

describe("POST /api/batch/scrape: targets that can never be fetched", () => {
  it.each([
    ["http://[::ffff:0:a9fe:a9fe]/", /IPv4-translated address ::ffff:0:a9fe:a9fe is not allowed/],
    ["http://[::ffff:0:169.254.169.254]/latest/meta-data/", /IPv4-translated address/],
    ["http://169.254.169.254/latest/meta-data/", /cloud metadata address 169\.254\.169\.254/],
    ["http://0x7f000001/", /loopback address 127\.0\.0\.1/],
    ["http://[::ffff:10.0.0.1]/", /IPv4-mapped .* embeds private address 10\.0\.0\.1/],
    ["http://[64:ff9b::192.168.0.1]/", /NAT64 .* embeds private address 192\.168\.0\.1/],
    ["http://[2002:c0a8:1::]/", /6to4 .* embeds private address 192\.168\.0\.1/],
    ["https://[fd00:ec2::254]/", /cloud metadata address fd00:ec2::254/],
    ["https://[3fff::1]/", /documentation address 3fff::1 /],
    ["https://192.88.99.1/", /6to4 relay anycast address 192\.88\.99\.1/],
    ["http://localhost:8787/", /loopback hostname localhost/],
    ["http://intranet/", /single-label hostname intranet/],
  ])("refuses %s with 400 naming it and its index, reserving nothing", async (target, reason) => {
    const { apiKey } = await newAccount(100);
    const before = await snapshot(apiKey);
    const r = await createBatch(apiKey, { urls: ["https://example.com/a", "https://example.com/b", target] });
    expectError(r, 400, "VALIDATION_ERROR");
    expect(r.body.message.startsWith(`urls[2]: ${target} can never be fetched: `)).toBe(true);
    expect(r.body.message).toMatch(reason);
    expect(await snapshot(apiKey)).toEqual(before);
    expect(before.batches.pagination.total).toBe(0);
    expect(before.ledger).toHaveLength(1); // the grant
    expect(before.credits).toMatchObject({ balance: 100, reserved: 0 });
  });

  it("names the first refused URL when there are several", async () => {
    const { apiKey } = await newAccount(100);
    const r = await createBatch(apiKey, { urls: ["https://example.com/", "http://10.1.2.3/", "http://[::1]/"] });
    expectError(r, 400, "VALIDATION_ERROR");
    expect(r.body.message).toMatch(
      /^urls\[1\]: http:\/\/10\.1\.2\.3\/ can never be fetched: private address 10\.1\.2\.3/,
    );
  });

  it("refuses a webhookUrl at an IPv4-translated address the same way, reserving nothing", async () => {
    const { apiKey } = await newAccount(100);
    const before = await snapshot(apiKey);
    const r = await createBatch(apiKey, {
      urls: ["https://example.com/"],
      webhookUrl: "https://[::ffff:0:a9fe:a9fe]/hook",
    });
    expectError(r, 400, "VALIDATION_ERROR");
    expect(r.body.message).toMatch(/^webhookUrl: IPv4-translated address ::ffff:0:a9fe:a9fe is not allowed/);
    expect(await snapshot(apiKey)).toEqual(before);
  });

  it("a refused create does not burn its Idempotency-Key", async () => {
    const { apiKey } = await newAccount(100);
    const headers = { "idempotency-key": "fix-the-url" };
    expectError(await createBatch(apiKey, { urls: ["http://[::ffff:0:a00:1]/"] }, headers), 400, "VALIDATION_ERROR");
    expect((await createBatch(apiKey, { urls: ["https://example.com/"] }, headers)).status).toBe(202);
  });

  it.each([
    ["http://93.184.216.34/"],
    ["https://[2606:4700::1111]/"],
    ["http://[::ffff:8.8.8.8]/"],
    ["http://[64:ff9b::8.8.8.8]/"],
    // A name is never resolved at create: it is checked again at fetch time and after every redirect.
    ["http://127.0.0.1.nip.io/"],
  ])("accepts %s", async (target) => {
    const { apiKey } = await newAccount(100);
    expect((await createBatch(apiKey, { urls: [target] })).status).toBe(202);
  });
});

describe("POST /api/batch/scrape with ALLOW_LOOPBACK_TARGETS=true (local development)", () => {
  const devEnv = { ...env, ALLOW_LOOPBACK_TARGETS: "true" };
  const create = (apiKey: string, urls: string[]) =>
    createApp().fetch(
      new Request("https://api.test/api/batch/scrape", {
        method: "POST",
        headers: keyHeaders(apiKey),
        body: JSON.stringify({ urls }),
      }),
      devEnv,
      createExecutionContext(),
    );

  it.each([["http://127.0.0.1:8787/page"], ["http://localhost:8787/"], ["http://[::1]:8787/"]])(
    "accepts loopback target %s",
    async (target) => {
      const { apiKey } = await newAccount(100);
      expect((await create(apiKey, [target])).status).toBe(202);
    },
  );

  it.each([
    ["http://[::ffff:127.0.0.1]/"],
    ["http://[::ffff:0:7f00:1]/"],
    ["http://10.0.0.1/"],
    ["http://169.254.169.254/"],
  ])("still refuses %s", async (target) => {
    const { apiKey } = await newAccount(100);
    const res = await create(apiKey, [target]);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({
      code: "VALIDATION_ERROR",
      message: expect.stringMatching(/^urls\[0\]: /),
    });
    expect(await getCredits(apiKey)).toMatchObject({ balance: 100, reserved: 0 });
  });
});
