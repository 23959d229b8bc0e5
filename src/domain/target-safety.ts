/**
 * Decides whether a URL may be fetched: a batch's targets at create and again before every
 * fetch and after every redirect, and webhook URLs at create and before every delivery.
 * Pure: it looks only at the URL's text. Address literals are judged by the special-purpose
 * table in src/domain/special-addresses.ts; docs/target-safety.md says what is refused.
 *
 * Limit: names are not resolved here. `fetch` resolves the name itself when it connects and
 * cannot be pinned to an address we resolved first, so a check on our own answer would judge
 * an address `fetch` may never use. A public name that resolves to a private address (say
 * `127.0.0.1.nip.io`) passes this check; this module refuses what can be refused from the
 * URL alone, and the platform's fetch, which runs outside any network of ours, does the rest.
 *
 * Non-canonical IPv4 (`2130706433`, `0x7f.0.0.1`, `0177.0.0.1`, `127.1`) needs no code
 * of its own: the WHATWG URL parser rewrites it to dotted decimal in `hostname`, and
 * the tests pin that down. A guard below refuses any that a parser leaves unrewritten.
 */

import {
  embeddedIpv4,
  formatIpv4,
  LOOPBACK,
  lookupIpv4,
  lookupIpv6,
  parseIpv4,
  parseIpv6,
  type SpecialMatch,
} from "./special-addresses";

export type TargetCheck = { ok: true; url: URL } | { ok: false; code: "BLOCKED_TARGET"; reason: string };

export interface TargetPolicy {
  /** Dev/test only: lets 127.0.0.0/8, ::1 and `localhost` through. Off in production. */
  allowLoopback: boolean;
}

const DEFAULT_POLICY: TargetPolicy = { allowLoopback: false };

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
  const match = lookupIpv4(address);
  if (match === null) return null;
  if (match.range.label === LOOPBACK && policy.allowLoopback) return null;
  return `${match.range.label} address ${formatIpv4(address)} is not allowed (${entry(match)})`;
}

function checkIpv6Host(text: string, policy: TargetPolicy): string | null {
  const address = parseIpv6(text);
  if (address === null) return `malformed IPv6 address ${text}`;
  const match = lookupIpv6(address);
  if (match === null) return null;
  const { label, embeds } = match.range;
  if (embeds !== undefined) {
    // Judged without the loopback allowance: dev setups reach loopback as 127.0.0.1 or ::1.
    const inner = checkIpv4(embeddedIpv4(address, embeds), DEFAULT_POLICY);
    return inner === null ? null : `${label} address ${text} embeds ${inner}`;
  }
  if (label === LOOPBACK && policy.allowLoopback) return null;
  return `${label} address ${text} is not allowed (${entry(match)})`;
}

/** The table row a refusal rests on, as the registry names it. */
function entry(match: SpecialMatch): string {
  return `${match.range.name}, ${match.cidr}`;
}
