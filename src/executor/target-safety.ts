/**
 * Decides whether a scraping target URL may be fetched: called before every fetch and
 * again after every redirect. Pure: it looks only at the URL's text.
 *
 * Limit: names are not resolved here (Workers has no DNS API), so a public name that
 * resolves to a private address (say `127.0.0.1.nip.io`) passes this check. The
 * platform's own fetch stops that, as it cannot reach private networks; this module
 * refuses what can be refused from the URL alone.
 *
 * Non-canonical IPv4 (`2130706433`, `0x7f.0.0.1`, `0177.0.0.1`, `127.1`) needs no code
 * of its own: the WHATWG URL parser rewrites it to dotted decimal in `hostname`, and
 * the tests pin that down. A guard below refuses any that a parser leaves unrewritten.
 */

export type TargetCheck =
  | { ok: true; url: URL }
  | { ok: false; code: "BLOCKED_TARGET"; reason: string };

export interface TargetPolicy {
  /** Dev/test only: lets 127.0.0.0/8, ::1 and `localhost` through. Off in production. */
  allowLoopback: boolean;
}

const DEFAULT_POLICY: TargetPolicy = { allowLoopback: false };

const LOOPBACK = "loopback";

/** First match wins, so narrower rows come before the ranges that contain them. */
const BLOCKED_IPV4: readonly (readonly [cidr: string, label: string])[] = [
  ["0.0.0.0/8", "this-network"],
  ["10.0.0.0/8", "private"],
  ["100.64.0.0/10", "shared (CGNAT)"],
  ["127.0.0.0/8", LOOPBACK],
  ["169.254.169.254/32", "cloud metadata"],
  ["169.254.0.0/16", "link-local"],
  ["172.16.0.0/12", "private"],
  ["192.0.0.0/24", "IETF protocol"],
  ["192.0.2.0/24", "documentation"],
  ["192.168.0.0/16", "private"],
  ["198.18.0.0/15", "benchmarking"],
  ["198.51.100.0/24", "documentation"],
  ["203.0.113.0/24", "documentation"],
  ["224.0.0.0/4", "multicast"],
  ["255.255.255.255/32", "broadcast"],
  ["240.0.0.0/4", "reserved"],
];

/** Where an IPv6 range carries an IPv4 address: those are judged by the IPv4 table. */
type EmbeddedIpv4 = "low32" | "6to4";

interface Ipv6Row {
  cidr: string;
  label: string;
  embeds?: EmbeddedIpv4;
}

const BLOCKED_IPV6: readonly Ipv6Row[] = [
  { cidr: "::/128", label: "unspecified" },
  { cidr: "::1/128", label: LOOPBACK },
  { cidr: "::/96", label: "IPv4-compatible (deprecated)" },
  { cidr: "::ffff:0:0/96", label: "IPv4-mapped", embeds: "low32" },
  { cidr: "64:ff9b::/96", label: "NAT64", embeds: "low32" },
  { cidr: "64:ff9b:1::/48", label: "local-use NAT64" },
  { cidr: "100::/64", label: "discard-only" },
  { cidr: "2001::/32", label: "Teredo" },
  { cidr: "2001:db8::/32", label: "documentation" },
  { cidr: "2002::/16", label: "6to4", embeds: "6to4" },
  { cidr: "fd00:ec2::254/128", label: "cloud metadata" },
  { cidr: "fc00::/7", label: "unique-local" },
  { cidr: "fe80::/10", label: "link-local" },
  { cidr: "fec0::/10", label: "site-local (deprecated)" },
  { cidr: "ff00::/8", label: "multicast" },
];

/** Compared after lower-casing and dropping one trailing dot; each also covers its subdomains. */
const BLOCKED_NAME_SUFFIXES = ["localhost", "internal", "local", "localdomain", "home.arpa"];

/** Single labels that cloud providers resolve to their metadata service. */
const METADATA_NAMES = new Set(["metadata", "instance-data"]);

export function checkTarget(input: string | URL, policy: TargetPolicy = DEFAULT_POLICY): TargetCheck {
  let url: URL;
  try {
    // Re-parse a URL too, so the caller keeps its object and we judge a fresh one.
    url = new URL(typeof input === "string" ? input : input.href);
  } catch {
    return blocked("not a valid absolute URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return blocked(`scheme ${url.protocol.slice(0, -1)} is not allowed (only http and https)`);
  }
  if (url.username !== "" || url.password !== "") {
    return blocked("URLs with credentials (user or password) are not allowed");
  }
  const reason = url.hostname.startsWith("[")
    ? checkIpv6Host(url.hostname.slice(1, -1), policy)
    : checkIpv4OrName(url.hostname, policy);
  return reason === null ? { ok: true, url } : blocked(reason);
}

function blocked(reason: string): TargetCheck {
  return { ok: false, code: "BLOCKED_TARGET", reason };
}

/** Each check answers null when the host may be fetched, or why not. */
function checkIpv4OrName(hostname: string, policy: TargetPolicy): string | null {
  const ipv4 = parseIpv4(hostname);
  if (ipv4 !== null) return checkIpv4(ipv4, policy);
  // WHATWG parsers never get here with a numeric last label (it is an IPv4 or an error).
  if (/(^|\.)(\d+|0x[0-9a-f]*)\.?$/i.test(hostname)) {
    return `non-canonical IPv4 address ${hostname} is not allowed`;
  }
  return checkName(hostname, policy);
}

function checkName(hostname: string, policy: TargetPolicy): string | null {
  const name = hostname.toLowerCase().replace(/\.$/, "");
  if (name.split(".").some((label) => label === "")) return `malformed hostname ${hostname}`;
  if (name === "localhost") return policy.allowLoopback ? null : `loopback hostname ${hostname} is not allowed`;
  if (METADATA_NAMES.has(name)) return `cloud metadata hostname ${hostname} is not allowed`;
  const suffix = BLOCKED_NAME_SUFFIXES.find((s) => name === s || name.endsWith(`.${s}`));
  if (suffix !== undefined) return `hostname ${hostname} is under .${suffix}, which is not public`;
  if (!name.includes(".")) return `single-label hostname ${hostname} is not public`;
  return null;
}

function checkIpv4(address: number, policy: TargetPolicy): string | null {
  const row = IPV4_TABLE.find((r) => ((address & r.mask) >>> 0) === r.base);
  if (row === undefined) return null;
  if (row.label === LOOPBACK && policy.allowLoopback) return null;
  return `${row.label} address ${formatIpv4(address)} is not allowed`;
}

function checkIpv6Host(text: string, policy: TargetPolicy): string | null {
  const address = parseIpv6(text);
  if (address === null) return `malformed IPv6 address ${text}`;
  const row = IPV6_TABLE.find((r) => (address & r.mask) === r.base);
  if (row === undefined) return null;
  if (row.embeds !== undefined) {
    const ipv4 = embeddedIpv4(address, row.embeds);
    // Judged without the loopback allowance: dev setups reach loopback as 127.0.0.1 or ::1.
    const inner = checkIpv4(ipv4, DEFAULT_POLICY);
    return inner === null ? null : `${row.label} address ${text} embeds ${inner}`;
  }
  if (row.label === LOOPBACK && policy.allowLoopback) return null;
  return `${row.label} address ${text} is not allowed`;
}

function embeddedIpv4(address: bigint, where: EmbeddedIpv4): number {
  const shift = where === "low32" ? 0n : 80n; // 6to4 is 2002:AABB:CCDD::/48
  return Number((address >> shift) & 0xffff_ffffn);
}

// ---- Address parsing -------------------------------------------------------------

/** Strict dotted decimal only, as the URL parser writes it; anything else is null. */
function parseIpv4(text: string): number | null {
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

function formatIpv4(address: number): string {
  return [24, 16, 8, 0].map((shift) => (address >>> shift) & 0xff).join(".");
}

/** Eight 16-bit groups as one 128-bit number; handles `::` and a dotted IPv4 tail. */
function parseIpv6(text: string): bigint | null {
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

// ---- Tables, parsed once ---------------------------------------------------------

interface Ipv4Range {
  base: number;
  mask: number;
  label: string;
}

interface Ipv6Range {
  base: bigint;
  mask: bigint;
  label: string;
  embeds?: EmbeddedIpv4;
}

const IPV4_TABLE: readonly Ipv4Range[] = BLOCKED_IPV4.map(([cidr, label]) => {
  const [address, bits] = splitCidr(cidr);
  const base = parseIpv4(address);
  if (base === null) throw new Error(`bad IPv4 range ${cidr}`);
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return { base: (base & mask) >>> 0, mask, label };
});

const IPV6_TABLE: readonly Ipv6Range[] = BLOCKED_IPV6.map(({ cidr, label, embeds }) => {
  const [address, bits] = splitCidr(cidr);
  const base = parseIpv6(address);
  if (base === null) throw new Error(`bad IPv6 range ${cidr}`);
  const all = (1n << 128n) - 1n;
  const mask = (all << BigInt(128 - bits)) & all;
  return embeds === undefined ? { base: base & mask, mask, label } : { base: base & mask, mask, label, embeds };
});

function splitCidr(cidr: string): [address: string, bits: number] {
  const [address = "", bits = ""] = cidr.split("/");
  return [address, Number(bits)];
}
