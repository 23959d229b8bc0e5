import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  IPV4_SPECIAL,
  IPV6_SPECIAL,
  lookupIpv4,
  lookupIpv6,
  parseIpv4,
  parseIpv6,
  type SpecialMatch,
} from "../../src/domain/special-addresses";
import { IPV4_EXPECTED, IPV6_EXPECTED } from "../fixtures/special-addresses";

function named(match: SpecialMatch | null): string | null {
  return match === null ? null : `${match.cidr} ${match.range.name}`;
}

function v4(text: string): number {
  const n = parseIpv4(text);
  if (n === null) throw new Error(`not an IPv4 address: ${text}`);
  return n;
}

function v6(text: string): bigint {
  const n = parseIpv6(text);
  if (n === null) throw new Error(`not an IPv6 address: ${text}`);
  return n;
}

const cidrsOf = (rows: typeof IPV4_SPECIAL) => rows.flatMap((r) => r.block.split(", "));

describe("special-purpose table: every range at its edges", () => {
  it.each(IPV4_EXPECTED)("IPv4 %s is in %s", (address, range) => {
    expect(named(lookupIpv4(v4(address)))).toBe(range);
  });

  it.each(IPV6_EXPECTED)("IPv6 %s is in %s", (address, range) => {
    expect(named(lookupIpv6(v6(address)))).toBe(range);
  });

  it("every block of the table has addresses in the list above (a new row needs its edges written out)", () => {
    const named4 = new Set(IPV4_EXPECTED.map(([, r]) => r?.split(" ")[0]));
    const named6 = new Set(IPV6_EXPECTED.map(([, r]) => r?.split(" ")[0]));
    expect(cidrsOf(IPV4_SPECIAL).filter((c) => !named4.has(c))).toEqual([]);
    expect(cidrsOf(IPV6_SPECIAL).filter((c) => !named6.has(c))).toEqual([]);
  });
});

describe("special-purpose table: shape", () => {
  it("holds every entry of the IANA registries (25 IPv4 rows, 25 IPv6 rows) and says where the others come from", () => {
    expect(IPV4_SPECIAL.filter((r) => r.source === undefined)).toHaveLength(25);
    expect(IPV6_SPECIAL.filter((r) => r.source === undefined)).toHaveLength(25);
    for (const row of [...IPV4_SPECIAL, ...IPV6_SPECIAL]) expect(row.name.length).toBeGreaterThan(0);
  });

  it("has no block twice", () => {
    const all = [...cidrsOf(IPV4_SPECIAL), ...cidrsOf(IPV6_SPECIAL)];
    expect(new Set(all).size).toBe(all.length);
  });

  it("embeds an IPv4 address only in the mapped, NAT64 and 6to4 ranges", () => {
    const embedding = [...IPV4_SPECIAL, ...IPV6_SPECIAL].filter((r) => r.embeds !== undefined).map((r) => r.block);
    expect(embedding).toEqual(["::ffff:0:0/96", "64:ff9b::/96", "2002::/16"]);
  });
});

describe("special-purpose table: lookup", () => {
  it("finds the narrowest range holding any IPv4 address in a block", () => {
    for (const row of IPV4_SPECIAL) {
      for (const cidr of row.block.split(", ")) {
        const [base = "", bits = ""] = cidr.split("/");
        const hostBits = 32 - Number(bits);
        fc.assert(
          fc.property(fc.integer({ min: 0, max: 2 ** hostBits - 1 }), (host) => {
            const found = lookupIpv4(v4(base) + host);
            expect(found).not.toBeNull();
            expect(Number(found!.cidr.split("/")[1])).toBeGreaterThanOrEqual(Number(bits));
          }),
          { numRuns: 50 },
        );
      }
    }
  });

  it("finds the narrowest range holding any IPv6 address in a block", () => {
    for (const row of IPV6_SPECIAL) {
      const [base = "", bits = ""] = row.block.split("/");
      const hostBits = 128 - Number(bits);
      fc.assert(
        fc.property(fc.bigInt({ min: 0n, max: (1n << BigInt(hostBits)) - 1n }), (host) => {
          const found = lookupIpv6(v6(base) + host);
          expect(found).not.toBeNull();
          expect(Number(found!.cidr.split("/")[1])).toBeGreaterThanOrEqual(Number(bits));
        }),
        { numRuns: 50 },
      );
    }
  });

  it.each([
    ["0:0:0:0:0:ffff:a9fe:a9fe", "::ffff:0:0/96"],
    ["0000:0000:0000:0000:ffff:0000:a9fe:a9fe", "::ffff:0:0:0/96"],
    ["::FFFF:0:A9FE:A9FE", "::ffff:0:0:0/96"],
    ["::ffff:0:169.254.169.254", "::ffff:0:0:0/96"],
    ["::ffff:169.254.169.254", "::ffff:0:0/96"],
    ["64:FF9B::10.0.0.1", "64:ff9b::/96"],
    ["2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::/32"],
    ["FE80::1", "fe80::/10"],
  ])("reads the written form %s (in %s)", (text, cidr) => {
    expect(lookupIpv6(v6(text))?.cidr).toBe(cidr);
  });
});
