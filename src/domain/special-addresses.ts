/**
 * The special-purpose IP address ranges, in one table, and the lookup that finds the entry an
 * address falls in. Pure: the target guard (src/domain/target-safety.ts) decides with it.
 *
 * Source, one row per registry entry in the registry's order, names and columns as written there:
 *   IANA IPv4 Special-Purpose Address Registry, last updated 2025-10-09
 *     https://www.iana.org/assignments/iana-ipv4-special-registry/iana-ipv4-special-registry.xhtml
 *   IANA IPv6 Special-Purpose Address Registry, last updated 2025-10-09
 *     https://www.iana.org/assignments/iana-ipv6-special-registry/iana-ipv6-special-registry.xhtml
 * `reachable` is the registry's "Globally Reachable" column (null: "N/A", or the entry was
 * terminated). Rows after the registries' own (`source` set) come from elsewhere, named there.
 * docs/target-safety.md says what is refused and why.
 */

/** Where an IPv6 range carries an IPv4 address, which then decides. */
export type EmbeddedIpv4 = "low32" | "6to4";

export interface SpecialRange {
  /** As the registry writes it: one CIDR, or several joined by ", ". */
  block: string;
  /** The registry's name for the entry. */
  name: string;
  rfc: string;
  /** The registry's "Globally Reachable" column; null for N/A or a terminated entry. */
  reachable: boolean | null;
  /** What error messages call it. */
  label: string;
  embeds?: EmbeddedIpv4;
  /** Set on rows that are not in the IANA special-purpose registries: where they come from. */
  source?: string;
}

export const LOOPBACK = "loopback";

export const IPV4_SPECIAL: readonly SpecialRange[] = [
  { block: "0.0.0.0/8", name: '"This network"', rfc: "RFC791", reachable: false, label: "this-network" },
  { block: "0.0.0.0/32", name: '"This host on this network"', rfc: "RFC1122", reachable: false, label: "this-network" },
  { block: "10.0.0.0/8", name: "Private-Use", rfc: "RFC1918", reachable: false, label: "private" },
  { block: "100.64.0.0/10", name: "Shared Address Space", rfc: "RFC6598", reachable: false, label: "shared (CGNAT)" },
  { block: "127.0.0.0/8", name: "Loopback", rfc: "RFC1122", reachable: false, label: LOOPBACK },
  { block: "169.254.0.0/16", name: "Link Local", rfc: "RFC3927", reachable: false, label: "link-local" },
  { block: "172.16.0.0/12", name: "Private-Use", rfc: "RFC1918", reachable: false, label: "private" },
  {
    block: "192.0.0.0/24",
    name: "IETF Protocol Assignments",
    rfc: "RFC6890",
    reachable: false,
    label: "IETF protocol",
  },
  {
    block: "192.0.0.0/29",
    name: "IPv4 Service Continuity Prefix",
    rfc: "RFC7335",
    reachable: false,
    label: "IETF protocol",
  },
  { block: "192.0.0.8/32", name: "IPv4 dummy address", rfc: "RFC7600", reachable: false, label: "IETF protocol" },
  {
    block: "192.0.0.9/32",
    name: "Port Control Protocol Anycast",
    rfc: "RFC7723",
    reachable: true,
    label: "IETF protocol",
  },
  {
    block: "192.0.0.10/32",
    name: "Traversal Using Relays around NAT Anycast",
    rfc: "RFC8155",
    reachable: true,
    label: "IETF protocol",
  },
  {
    block: "192.0.0.170/32, 192.0.0.171/32",
    name: "NAT64/DNS64 Discovery",
    rfc: "RFC8880",
    reachable: false,
    label: "IETF protocol",
  },
  {
    block: "192.0.2.0/24",
    name: "Documentation (TEST-NET-1)",
    rfc: "RFC5737",
    reachable: false,
    label: "documentation",
  },
  { block: "192.31.196.0/24", name: "AS112-v4", rfc: "RFC7535", reachable: true, label: "AS112 DNS" },
  { block: "192.52.193.0/24", name: "AMT", rfc: "RFC7450", reachable: true, label: "AMT relay" },
  {
    block: "192.88.99.0/24",
    name: "Deprecated (6to4 Relay Anycast)",
    rfc: "RFC7526",
    reachable: null,
    label: "6to4 relay anycast",
  },
  {
    block: "192.88.99.2/32",
    name: "6a44-relay anycast address",
    rfc: "RFC6751",
    reachable: false,
    label: "6a44 relay anycast",
  },
  { block: "192.168.0.0/16", name: "Private-Use", rfc: "RFC1918", reachable: false, label: "private" },
  {
    block: "192.175.48.0/24",
    name: "Direct Delegation AS112 Service",
    rfc: "RFC7534",
    reachable: true,
    label: "AS112 DNS",
  },
  { block: "198.18.0.0/15", name: "Benchmarking", rfc: "RFC2544", reachable: false, label: "benchmarking" },
  {
    block: "198.51.100.0/24",
    name: "Documentation (TEST-NET-2)",
    rfc: "RFC5737",
    reachable: false,
    label: "documentation",
  },
  {
    block: "203.0.113.0/24",
    name: "Documentation (TEST-NET-3)",
    rfc: "RFC5737",
    reachable: false,
    label: "documentation",
  },
  { block: "240.0.0.0/4", name: "Reserved", rfc: "RFC1112", reachable: false, label: "reserved" },
  { block: "255.255.255.255/32", name: "Limited Broadcast", rfc: "RFC919", reachable: false, label: "broadcast" },
  // Not in the special-purpose registry.
  {
    block: "224.0.0.0/4",
    name: "Multicast",
    rfc: "RFC5771",
    reachable: null,
    label: "multicast",
    source: "IANA IPv4 Multicast Address Space Registry",
  },
  {
    block: "169.254.169.254/32",
    name: "Instance metadata service",
    rfc: "-",
    reachable: false,
    label: "cloud metadata",
    source: "AWS, Google Cloud and Azure",
  },
];

export const IPV6_SPECIAL: readonly SpecialRange[] = [
  { block: "::1/128", name: "Loopback Address", rfc: "RFC4291", reachable: false, label: LOOPBACK },
  { block: "::/128", name: "Unspecified Address", rfc: "RFC4291", reachable: false, label: "unspecified" },
  {
    block: "::ffff:0:0/96",
    name: "IPv4-mapped Address",
    rfc: "RFC4291",
    reachable: false,
    label: "IPv4-mapped",
    embeds: "low32",
  },
  {
    block: "64:ff9b::/96",
    name: "IPv4-IPv6 Translat.",
    rfc: "RFC6052",
    reachable: true,
    label: "NAT64",
    embeds: "low32",
  },
  { block: "64:ff9b:1::/48", name: "IPv4-IPv6 Translat.", rfc: "RFC8215", reachable: false, label: "local-use NAT64" },
  { block: "100::/64", name: "Discard-Only Address Block", rfc: "RFC6666", reachable: false, label: "discard-only" },
  { block: "100:0:0:1::/64", name: "Dummy IPv6 Prefix", rfc: "RFC9780", reachable: false, label: "dummy" },
  { block: "2001::/23", name: "IETF Protocol Assignments", rfc: "RFC2928", reachable: false, label: "IETF protocol" },
  { block: "2001::/32", name: "TEREDO", rfc: "RFC4380", reachable: null, label: "Teredo" },
  {
    block: "2001:1::1/128",
    name: "Port Control Protocol Anycast",
    rfc: "RFC7723",
    reachable: true,
    label: "IETF protocol",
  },
  {
    block: "2001:1::2/128",
    name: "Traversal Using Relays around NAT Anycast",
    rfc: "RFC8155",
    reachable: true,
    label: "IETF protocol",
  },
  {
    block: "2001:1::3/128",
    name: "DNS-SD Service Registration Protocol Anycast",
    rfc: "RFC9665",
    reachable: true,
    label: "IETF protocol",
  },
  { block: "2001:2::/48", name: "Benchmarking", rfc: "RFC5180", reachable: false, label: "benchmarking" },
  { block: "2001:3::/32", name: "AMT", rfc: "RFC7450", reachable: true, label: "AMT relay" },
  { block: "2001:4:112::/48", name: "AS112-v6", rfc: "RFC7535", reachable: true, label: "AS112 DNS" },
  { block: "2001:10::/28", name: "Deprecated (previously ORCHID)", rfc: "RFC4843", reachable: null, label: "ORCHID" },
  { block: "2001:20::/28", name: "ORCHIDv2", rfc: "RFC7343", reachable: true, label: "ORCHID" },
  {
    block: "2001:30::/28",
    name: "Drone Remote ID Protocol Entity Tags (DETs) Prefix",
    rfc: "RFC9374",
    reachable: true,
    label: "drone entity tag",
  },
  { block: "2001:db8::/32", name: "Documentation", rfc: "RFC3849", reachable: false, label: "documentation" },
  { block: "2002::/16", name: "6to4", rfc: "RFC3056", reachable: null, label: "6to4", embeds: "6to4" },
  {
    block: "2620:4f:8000::/48",
    name: "Direct Delegation AS112 Service",
    rfc: "RFC7534",
    reachable: true,
    label: "AS112 DNS",
  },
  { block: "3fff::/20", name: "Documentation", rfc: "RFC9637", reachable: false, label: "documentation" },
  { block: "5f00::/16", name: "Segment Routing (SRv6) SIDs", rfc: "RFC9602", reachable: false, label: "SRv6 SID" },
  { block: "fc00::/7", name: "Unique-Local", rfc: "RFC4193", reachable: false, label: "unique-local" },
  { block: "fe80::/10", name: "Link-Local Unicast", rfc: "RFC4291", reachable: false, label: "link-local" },
  // Not in the special-purpose registry.
  {
    block: "::ffff:0:0:0/96",
    name: "IPv4-translated Address",
    rfc: "RFC2765",
    reachable: null,
    label: "IPv4-translated",
    source: "RFC 2765 section 2.1 (SIIT; dropped by RFC 6145)",
  },
  {
    block: "::/96",
    name: "IPv4-Compatible IPv6 Address",
    rfc: "RFC4291",
    reachable: null,
    label: "IPv4-compatible (deprecated)",
    source: "RFC 4291 section 2.5.5.1 (deprecated)",
  },
  {
    block: "fec0::/10",
    name: "Site-local (deprecated)",
    rfc: "RFC3879",
    reachable: null,
    label: "site-local (deprecated)",
    source: "IANA IPv6 Address Space Registry",
  },
  {
    block: "ff00::/8",
    name: "Multicast",
    rfc: "RFC4291",
    reachable: null,
    label: "multicast",
    source: "IANA IPv6 Address Space Registry",
  },
  {
    block: "fd00:ec2::254/128",
    name: "Instance metadata service",
    rfc: "-",
    reachable: false,
    label: "cloud metadata",
    source: "AWS",
  },
];

/** The row an address falls in, and which of its blocks. */
export interface SpecialMatch {
  range: SpecialRange;
  cidr: string;
}

/** The most specific row holding `address` (a 32-bit number), or null for none. */
export function lookupIpv4(address: number): SpecialMatch | null {
  const hit = IPV4_BLOCKS.find((b) => (address & b.mask) >>> 0 === b.base);
  return hit === undefined ? null : { range: hit.range, cidr: hit.cidr };
}

/** The most specific row holding `address` (a 128-bit number), or null for none. */
export function lookupIpv6(address: bigint): SpecialMatch | null {
  const hit = IPV6_BLOCKS.find((b) => (address & b.mask) === b.base);
  return hit === undefined ? null : { range: hit.range, cidr: hit.cidr };
}

/** The IPv4 address an embedding range carries: the low 32 bits, or 6to4's `2002:AABB:CCDD::/48`. */
export function embeddedIpv4(address: bigint, where: EmbeddedIpv4): number {
  const shift = where === "low32" ? 0n : 80n;
  return Number((address >> shift) & 0xffff_ffffn);
}

// ---- Address parsing -------------------------------------------------------------

/** Strict dotted decimal only, as the URL parser writes it; anything else is null. */
export function parseIpv4(text: string): number | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let value = 0;
  for (const part of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(part)) return null;
    const octet = Number(part);
    if (octet > 255) return null;
    value = value * 256 + octet;
  }
  return value;
}

export function formatIpv4(address: number): string {
  return [24, 16, 8, 0].map((shift) => (address >>> shift) & 0xff).join(".");
}

/** Eight 16-bit groups as one 128-bit number; handles `::` and a dotted IPv4 tail. */
export function parseIpv6(text: string): bigint | null {
  const lastColon = text.lastIndexOf(":");
  const last = text.slice(lastColon + 1);
  let body = text;
  if (last.includes(".")) {
    // Rewrite `::ffff:1.2.3.4` as `::ffff:102:304` so only hex groups remain.
    const ipv4 = parseIpv4(last);
    if (ipv4 === null) return null;
    body = `${text.slice(0, lastColon + 1)}${(ipv4 >>> 16).toString(16)}:${(ipv4 & 0xffff).toString(16)}`;
  }
  const halves = body.split("::");
  if (halves.length > 2) return null;
  const groupsOf = (half: string | undefined): string[] => (half === undefined || half === "" ? [] : half.split(":"));
  const head = groupsOf(halves[0]);
  const tail = groupsOf(halves[1]);
  const missing = 8 - head.length - tail.length;
  // Without `::` all eight groups are written; with it, `::` stands for at least one.
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const groups = [...head, ...Array<string>(halves.length === 1 ? 0 : missing).fill("0"), ...tail];
  let value = 0n;
  for (const group of groups) {
    if (!/^[0-9a-f]{1,4}$/i.test(group)) return null;
    value = (value << 16n) | BigInt(parseInt(group, 16));
  }
  return value;
}

// ---- The table, parsed once ------------------------------------------------------

interface Block<N> {
  base: N;
  mask: N;
  bits: number;
  cidr: string;
  range: SpecialRange;
}

/** Every block of every row, most specific first, so the first hit is the longest prefix. */
const IPV4_BLOCKS: readonly Block<number>[] = blocksOf(IPV4_SPECIAL, 32, (cidr, address, bits) => {
  const base = parseIpv4(address);
  if (base === null) throw new Error(`bad IPv4 block ${cidr}`);
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  if ((base & mask) >>> 0 !== base) throw new Error(`${cidr} has host bits set`);
  return { base, mask };
});

const IPV6_BLOCKS: readonly Block<bigint>[] = blocksOf(IPV6_SPECIAL, 128, (cidr, address, bits) => {
  const base = parseIpv6(address);
  if (base === null) throw new Error(`bad IPv6 block ${cidr}`);
  const all = (1n << 128n) - 1n;
  const mask = (all << BigInt(128 - bits)) & all;
  if ((base & mask) !== base) throw new Error(`${cidr} has host bits set`);
  return { base, mask };
});

function blocksOf<N>(
  rows: readonly SpecialRange[],
  width: number,
  parse: (cidr: string, address: string, bits: number) => { base: N; mask: N },
): Block<N>[] {
  const blocks = rows.flatMap((range) =>
    range.block.split(", ").map((cidr) => {
      const [address = "", bitsText = ""] = cidr.split("/");
      const bits = Number(bitsText);
      if (!/^\d+$/.test(bitsText) || bits > width) throw new Error(`bad prefix length in ${cidr}`);
      return { ...parse(cidr, address, bits), bits, cidr, range };
    }),
  );
  return blocks.sort((a, b) => b.bits - a.bits);
}
