import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkTarget } from "../../src/domain/target-safety";
import { IPV4_EXPECTED, IPV6_EXPECTED } from "../fixtures/special-addresses";

const LOOPBACK_ALLOWED = { allowLoopback: true };

/** Refused: the check must say BLOCKED_TARGET and its reason must name what was wrong. */
function expectBlocked(input: string | URL, reason: RegExp, policy?: { allowLoopback: boolean }): void {
  expect(checkTarget(input, policy)).toEqual({
    ok: false,
    code: "BLOCKED_TARGET",
    reason: expect.stringMatching(reason),
  });
}

function expectAllowed(input: string | URL, href: string, policy?: { allowLoopback: boolean }): void {
  const result = checkTarget(input, policy);
  expect(result.ok).toBe(true);
  expect(result.ok && result.url.href).toBe(href);
}

describe("checkTarget: schemes and URL shape", () => {
  it.each([
    ["file:///etc/passwd", /scheme file /],
    ["ftp://example.com/x", /scheme ftp /],
    ["data:text/plain,hi", /scheme data /],
    ["javascript:alert(1)", /scheme javascript /],
    ["gopher://example.com/", /scheme gopher /],
    ["ws://example.com/", /scheme ws /],
    ["wss://example.com/", /scheme wss /],
    ["blob:https://example.com/x", /scheme blob /],
    ["not a url", /not a valid absolute URL/],
    ["/relative/path", /not a valid absolute URL/],
    ["", /not a valid absolute URL/],
    ["http://", /not a valid absolute URL/],
    ["http://1.2.3.4.5/", /not a valid absolute URL/],
    ["http://4294967296/", /not a valid absolute URL/],
    ["http://[::1%25eth0]/", /not a valid absolute URL/],
    ["http://a..b/", /malformed hostname a\.\.b/],
    ["http://./", /malformed hostname \./],
  ])("refuses %s", (input, reason) => expectBlocked(input, reason));

  it.each([
    ["http://user:pw@example.com/", /credentials/],
    ["http://user@example.com/", /credentials/],
    ["http://:pw@example.com/", /credentials/],
    ["https://user:pw@localhost/", /credentials/],
  ])("refuses credentials in %s", (input, reason) => expectBlocked(input, reason));
});

describe("checkTarget: host names", () => {
  it.each([
    ["http://localhost/", /loopback hostname localhost/],
    ["http://LOCALHOST:8080/", /loopback hostname localhost/],
    ["http://localhost./", /loopback hostname localhost\./],
    ["http://localhost%2e/", /loopback hostname localhost\./],
    ["http://ＬＯＣＡＬＨＯＳＴ/", /loopback hostname localhost/],
    ["http://foo.localhost/", /under \.localhost/],
    ["http://a.b.localhost./", /under \.localhost/],
    ["http://metadata.google.internal/computeMetadata/v1/", /under \.internal/],
    ["http://ip-10-0-0-1.ec2.internal/", /under \.internal/],
    ["http://printer.local/", /under \.local,/],
    ["http://box.localdomain/", /under \.localdomain/],
    ["http://router.home.arpa/", /under \.home\.arpa/],
    ["http://home.arpa/", /under \.home\.arpa/],
    ["http://metadata/", /cloud metadata hostname metadata/],
    ["http://instance-data/latest/meta-data/", /cloud metadata hostname instance-data/],
    ["http://instance-data./", /cloud metadata hostname instance-data\./],
    ["http://intranet/", /single-label hostname intranet/],
    ["http://notlocal/", /single-label hostname notlocal/],
    ["http://intranet./", /single-label hostname intranet\./],
    ["http://internal/", /under \.internal/],
  ])("refuses %s", (input, reason) => expectBlocked(input, reason));

  it.each([
    ["https://example.com/a?b=1", "https://example.com/a?b=1"],
    ["HTTPS://Example.COM:443/", "https://example.com/"],
    ["http://example.com./", "http://example.com./"],
    // Contains "localhost" or "local" without being under those names: real public DNS.
    ["http://localhost.example.com/", "http://localhost.example.com/"],
    ["http://mylocalhost.com/", "http://mylocalhost.com/"],
    ["http://local.example.org/", "http://local.example.org/"],
    ["http://metadata.example.com/", "http://metadata.example.com/"],
    ["http://internal.example.com/", "http://internal.example.com/"],
    ["http://exämple.com/", "http://xn--exmple-cua.com/"],
    // Resolves to 127.0.0.1, but names are not resolved here: the platform's fetch stops it.
    ["http://127.0.0.1.nip.io/", "http://127.0.0.1.nip.io/"],
  ])("allows %s", (input, href) => expectAllowed(input, href));
});

describe("checkTarget: IPv4 literals", () => {
  it.each([
    ["http://0.0.0.0/", /this-network address 0\.0\.0\.0/],
    ["http://0.255.1.2/", /this-network address 0\.255\.1\.2/],
    ["http://10.0.0.1/", /private address 10\.0\.0\.1/],
    ["http://10.255.255.255/", /private address 10\.255\.255\.255/],
    ["http://100.64.0.1/", /CGNAT\) address 100\.64\.0\.1/],
    ["http://100.127.255.254/", /CGNAT\) address 100\.127\.255\.254/],
    ["http://127.0.0.1/", /loopback address 127\.0\.0\.1/],
    ["http://127.255.255.254/", /loopback address 127\.255\.255\.254/],
    ["http://169.254.169.254/latest/meta-data/", /cloud metadata address 169\.254\.169\.254/],
    ["http://169.254.1.1/", /link-local address 169\.254\.1\.1/],
    ["http://172.16.0.1/", /private address 172\.16\.0\.1/],
    ["http://172.31.255.255/", /private address 172\.31\.255\.255/],
    ["http://192.0.0.8/", /IETF protocol address 192\.0\.0\.8/],
    ["http://192.0.2.1/", /documentation address 192\.0\.2\.1/],
    ["http://192.168.1.1/", /private address 192\.168\.1\.1/],
    ["http://198.18.0.1/", /benchmarking address 198\.18\.0\.1/],
    ["http://198.19.255.255/", /benchmarking address 198\.19\.255\.255/],
    ["http://198.51.100.7/", /documentation address 198\.51\.100\.7/],
    ["http://203.0.113.9/", /documentation address 203\.0\.113\.9/],
    ["http://224.0.0.1/", /multicast address 224\.0\.0\.1/],
    ["http://239.255.255.250/", /multicast address 239\.255\.255\.250/],
    ["http://240.0.0.1/", /reserved address 240\.0\.0\.1/],
    ["http://255.255.255.254/", /reserved address 255\.255\.255\.254/],
    ["http://255.255.255.255/", /broadcast address 255\.255\.255\.255/],
  ])("refuses %s", (input, reason) => expectBlocked(input, reason));

  it.each([
    ["http://93.184.216.34/", "http://93.184.216.34/"],
    ["http://8.8.8.8:8080/x", "http://8.8.8.8:8080/x"],
    ["http://1.0.0.1/", "http://1.0.0.1/"],
    // Neighbours just outside the blocked ranges.
    ["http://9.255.255.255/", "http://9.255.255.255/"],
    ["http://11.0.0.0/", "http://11.0.0.0/"],
    ["http://100.63.255.255/", "http://100.63.255.255/"],
    ["http://100.128.0.0/", "http://100.128.0.0/"],
    ["http://126.255.255.255/", "http://126.255.255.255/"],
    ["http://128.0.0.0/", "http://128.0.0.0/"],
    ["http://169.253.255.255/", "http://169.253.255.255/"],
    ["http://172.15.255.255/", "http://172.15.255.255/"],
    ["http://172.32.0.0/", "http://172.32.0.0/"],
    ["http://192.0.1.1/", "http://192.0.1.1/"],
    ["http://192.169.0.0/", "http://192.169.0.0/"],
    ["http://198.17.255.255/", "http://198.17.255.255/"],
    ["http://198.20.0.0/", "http://198.20.0.0/"],
    ["http://223.255.255.255/", "http://223.255.255.255/"],
  ])("allows %s", (input, href) => expectAllowed(input, href));
});

describe("checkTarget: non-canonical IPv4", () => {
  // What workerd's URL parser (WHATWG) does with them: all become dotted decimal.
  it.each([
    ["http://2130706433/", "127.0.0.1"],
    ["http://0x7f000001/", "127.0.0.1"],
    ["http://0x7f.0.0.1/", "127.0.0.1"],
    ["http://0177.0.0.1/", "127.0.0.1"],
    ["http://127.1/", "127.0.0.1"],
    ["http://127.0.0.1./", "127.0.0.1"],
    ["http://127%2e0.0.1/", "127.0.0.1"],
    ["http://１２７.0.0.1/", "127.0.0.1"],
    ["http://0/", "0.0.0.0"],
    ["http://0x/", "0.0.0.0"],
    ["http://167772161/", "10.0.0.1"],
    ["http://0xa9.0xfe.0xa9.0xfe/", "169.254.169.254"],
    ["http://1.2.3/", "1.2.0.3"],
  ])("the URL parser rewrites %s to %s", (input, hostname) => {
    expect(new URL(input).hostname).toBe(hostname);
  });

  it.each([
    ["http://2130706433/", /loopback address 127\.0\.0\.1/],
    ["http://0x7f000001/", /loopback address 127\.0\.0\.1/],
    ["http://0x7f.0.0.1/", /loopback address 127\.0\.0\.1/],
    ["http://0177.0.0.1/", /loopback address 127\.0\.0\.1/],
    ["http://127.1/", /loopback address 127\.0\.0\.1/],
    ["http://127.0.0.1./", /loopback address 127\.0\.0\.1/],
    ["http://0/", /this-network address 0\.0\.0\.0/],
    ["http://167772161/", /private address 10\.0\.0\.1/],
    ["http://0xa9.0xfe.0xa9.0xfe/", /cloud metadata address 169\.254\.169\.254/],
    ["http://0300.0250.1.1/", /private address 192\.168\.1\.1/],
    ["http://4294967295/", /broadcast address 255\.255\.255\.255/],
  ])("refuses %s", (input, reason) => expectBlocked(input, reason));

  it("judges any 32-bit number written in decimal as its dotted form", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff_ffff }), (n) => {
        const dotted = [24, 16, 8, 0].map((s) => (n >>> s) & 0xff).join(".");
        expect(checkTarget(`http://${n}/`)).toEqual(checkTarget(`http://${dotted}/`));
      }),
    );
  });
});

describe("checkTarget: IPv6 literals", () => {
  it.each([
    ["http://[::1]/", /loopback address ::1 /],
    ["http://[0:0:0:0:0:0:0:1]/", /loopback address ::1 /],
    ["http://[::]/", /unspecified address :: /],
    ["http://[fc00::1]/", /unique-local address fc00::1 /],
    ["http://[fdff:ffff::1]/", /unique-local address fdff:ffff::1 /],
    ["http://[fd00:ec2::254]/", /cloud metadata address fd00:ec2::254 /],
    ["http://[FD00:EC2::254]/", /cloud metadata address fd00:ec2::254 /],
    ["http://[fe80::1]/", /link-local address fe80::1 /],
    ["http://[febf:ffff::1]/", /link-local address febf:ffff::1 /],
    ["http://[fec0::1]/", /site-local \(deprecated\) address fec0::1 /],
    ["http://[ff02::1]/", /multicast address ff02::1 /],
    ["http://[2001:db8::1]/", /documentation address 2001:db8::1 /],
    ["http://[2001:db8:ffff:ffff::1]/", /documentation address 2001:db8:ffff:ffff::1 /],
    ["http://[100::1]/", /discard-only address 100::1 /],
    ["http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", /Teredo address 2001:0:4136/],
    ["http://[64:ff9b:1::1]/", /local-use NAT64 address 64:ff9b:1::1 /],
    // Embedded IPv4, judged by the IPv4 rules.
    ["http://[::ffff:127.0.0.1]/", /IPv4-mapped address ::ffff:7f00:1 embeds loopback address 127\.0\.0\.1/],
    ["http://[::ffff:7f00:1]/", /IPv4-mapped address ::ffff:7f00:1 embeds loopback address 127\.0\.0\.1/],
    ["http://[::ffff:169.254.169.254]/", /embeds cloud metadata address 169\.254\.169\.254/],
    ["http://[::ffff:10.1.2.3]/", /IPv4-mapped address ::ffff:a01:203 embeds private address 10\.1\.2\.3/],
    ["http://[0:0:0:0:0:ffff:c0a8:101]/", /embeds private address 192\.168\.1\.1/],
    ["http://[64:ff9b::10.0.0.1]/", /NAT64 address 64:ff9b::a00:1 embeds private address 10\.0\.0\.1/],
    ["http://[64:ff9b::7f00:1]/", /NAT64 address 64:ff9b::7f00:1 embeds loopback address 127\.0\.0\.1/],
    ["http://[2002:7f00:1::]/", /6to4 address 2002:7f00:1:: embeds loopback address 127\.0\.0\.1/],
    ["http://[2002:a9fe:a9fe::1]/", /6to4 address .* embeds cloud metadata address 169\.254\.169\.254/],
    // IPv4-compatible (::a.b.c.d) is deprecated: refused whatever it embeds.
    ["http://[::127.0.0.1]/", /IPv4-compatible \(deprecated\) address ::7f00:1 /],
    ["http://[::8.8.8.8]/", /IPv4-compatible \(deprecated\) address ::808:808 /],
  ])("refuses %s", (input, reason) => expectBlocked(input, reason));

  it.each([
    ["http://[2606:4700::1111]/", "http://[2606:4700::1111]/"],
    ["https://[2001:4860:4860::8888]:8443/dns", "https://[2001:4860:4860::8888]:8443/dns"],
    ["http://[fbff:ffff::1]/", "http://[fbff:ffff::1]/"],
    ["http://[fe00::1]/", "http://[fe00::1]/"],
    ["http://[2001:db9::1]/", "http://[2001:db9::1]/"],
    // Embedded public IPv4 is as good as the IPv4 itself.
    ["http://[::ffff:8.8.8.8]/", "http://[::ffff:808:808]/"],
    ["http://[64:ff9b::93.184.216.34]/", "http://[64:ff9b::5db8:d822]/"],
    ["http://[2002:808:808::1]/", "http://[2002:808:808::1]/"],
  ])("allows %s", (input, href) => expectAllowed(input, href));

  it("judges any IPv4-mapped address by its embedded IPv4", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff_ffff }), (n) => {
        const dotted = [24, 16, 8, 0].map((s) => (n >>> s) & 0xff).join(".");
        expect(checkTarget(`http://[::ffff:${dotted}]/`).ok).toBe(checkTarget(`http://${dotted}/`).ok);
      }),
    );
  });
});

describe("checkTarget: allowLoopback", () => {
  it.each([
    ["http://127.0.0.1:8787/", "http://127.0.0.1:8787/"],
    ["http://127.1/", "http://127.0.0.1/"],
    ["http://2130706433/", "http://127.0.0.1/"],
    ["http://127.255.255.254/", "http://127.255.255.254/"],
    ["http://[::1]:8787/", "http://[::1]:8787/"],
    ["http://localhost:8787/x", "http://localhost:8787/x"],
    ["http://LOCALHOST./", "http://localhost./"],
    ["https://example.com/", "https://example.com/"],
  ])("with the flag on, allows %s", (input, href) => expectAllowed(input, href, LOOPBACK_ALLOWED));

  it.each([
    ["http://10.0.0.1/", /private address 10\.0\.0\.1/],
    ["http://0.0.0.0/", /this-network address 0\.0\.0\.0/],
    ["http://169.254.169.254/", /cloud metadata address 169\.254\.169\.254/],
    ["http://[::]/", /unspecified address ::/],
    ["http://[fe80::1]/", /link-local address fe80::1/],
    ["http://[::ffff:127.0.0.1]/", /IPv4-mapped .* embeds loopback address 127\.0\.0\.1/],
    ["http://[::127.0.0.1]/", /IPv4-compatible/],
    ["http://foo.localhost/", /under \.localhost/],
    ["http://intranet/", /single-label hostname intranet/],
    ["http://metadata/", /cloud metadata hostname metadata/],
    ["http://user:pw@localhost/", /credentials/],
    ["file:///etc/passwd", /scheme file /],
  ])("with the flag on, still refuses %s", (input, reason) => expectBlocked(input, reason, LOOPBACK_ALLOWED));

  it.each([
    ["http://127.0.0.1/", /loopback address 127\.0\.0\.1/],
    ["http://[::1]/", /loopback address ::1/],
    ["http://localhost/", /loopback hostname localhost/],
  ])("with the flag off, refuses %s", (input, reason) => {
    expectBlocked(input, reason, { allowLoopback: false });
    expectBlocked(input, reason);
  });
});

describe("checkTarget: URL objects", () => {
  it("accepts a URL and returns a fresh parsed copy", () => {
    const input = new URL("https://example.com/a?b=1");
    const result = checkTarget(input);
    expect(result.ok && result.url).toBeInstanceOf(URL);
    expect(result.ok && result.url).not.toBe(input);
    expect(result.ok && result.url.href).toBe("https://example.com/a?b=1");
  });

  it("judges a redirect target URL the same way as a string", () => {
    expectBlocked(
      new URL("/latest/meta-data/", "http://169.254.169.254/"),
      /cloud metadata address 169\.254\.169\.254/,
    );
    expectBlocked(new URL("http://0x7f000001/"), /loopback address 127\.0\.0\.1/);
  });
});

describe("checkTarget: the special-purpose table, in every written form", () => {
  const octets = (dotted: string) => dotted.split(".").map(Number);
  const asNumber = (dotted: string) => octets(dotted).reduce((n, o) => n * 256 + o, 0);
  const hex16 = (dotted: string) => {
    const [a = 0, b = 0, c = 0, d = 0] = octets(dotted);
    return [((a << 8) | b).toString(16), ((c << 8) | d).toString(16)];
  };

  /** Every way to write an IPv4 address that the URL parser or an IPv6 embedding turns into it. */
  function ipv4Forms(dotted: string): string[] {
    const [hi, lo] = hex16(dotted);
    return [
      `http://${dotted}/`,
      `http://${asNumber(dotted)}/`,
      `http://0x${asNumber(dotted).toString(16)}/`,
      `http://${octets(dotted)
        .map((o) => `0${o.toString(8)}`)
        .join(".")}/`,
      `http://${octets(dotted)
        .map((o) => `0x${o.toString(16)}`)
        .join(".")}/`,
      `http://[::ffff:${dotted}]/`,
      `http://[0:0:0:0:0:FFFF:${hi}:${lo}]/`,
      `http://[64:ff9b::${dotted}]/`,
      `http://[2002:${hi}:${lo}::1]/`,
    ];
  }

  function ipv6Forms(text: string): string[] {
    const value = BigInt(`0x${expandIpv6(text)}`);
    const groups = Array.from({ length: 8 }, (_, i) => ((value >> BigInt(112 - 16 * i)) & 0xffffn).toString(16));
    return [
      `http://[${text}]/`,
      `http://[${groups.map((g) => g.padStart(4, "0")).join(":")}]/`,
      `http://[${text.toUpperCase()}]/`,
      `http://[${groups.join(":")}]/`,
    ];
  }

  it.each(IPV4_EXPECTED.filter(([, range]) => range !== null))("refuses %s (%s) written any way", (address, range) => {
    for (const form of ipv4Forms(address)) {
      const result = checkTarget(form);
      expect(result.ok, form).toBe(false);
      expect(!result.ok && result.reason, form).toContain(`${range!.split(" ")[0]})`);
    }
  });

  it.each(IPV4_EXPECTED.filter(([, range]) => range === null))(
    "allows %s, just outside a range, written any way",
    (address) => {
      for (const form of ipv4Forms(address)) expect(checkTarget(form).ok, form).toBe(true);
    },
  );

  it.each(IPV6_EXPECTED.filter(([, range]) => range !== null))(
    "refuses [%s] (%s) written any way",
    (address, range) => {
      for (const form of ipv6Forms(address)) {
        const result = checkTarget(form);
        expect(result.ok, form).toBe(false);
        expect(!result.ok && result.reason, form).toMatch(/\)$/);
        if (!["::ffff:0:0/96", "64:ff9b::/96", "2002::/16"].some((c) => range!.startsWith(`${c} `))) {
          expect(!result.ok && result.reason, form).toContain(`${range!.split(" ")[0]})`);
        }
      }
    },
  );

  it.each(IPV6_EXPECTED.filter(([, range]) => range === null))(
    "allows [%s], just outside a range, written any way",
    (address) => {
      for (const form of ipv6Forms(address)) expect(checkTarget(form).ok, form).toBe(true);
    },
  );
});

describe("checkTarget: IPv4-translated and other IPv6 that carry an IPv4 address", () => {
  it.each([
    [
      "http://[::ffff:0:a9fe:a9fe]/",
      /IPv4-translated address ::ffff:0:a9fe:a9fe is not allowed \(IPv4-translated Address, ::ffff:0:0:0\/96\)/,
    ],
    ["http://[::ffff:0:169.254.169.254]/latest/meta-data/", /IPv4-translated address ::ffff:0:a9fe:a9fe /],
    ["http://[0:0:0:0:ffff:0:7f00:1]:8080/", /IPv4-translated address ::ffff:0:7f00:1 /],
    ["http://[::ffff:0:8.8.8.8]/", /IPv4-translated address ::ffff:0:808:808 /],
    ["http://[64:ff9b:1::a9fe:a9fe]/", /local-use NAT64 address 64:ff9b:1::a9fe:a9fe /],
    ["http://[64:ff9b:1::8.8.8.8]/", /local-use NAT64 address/],
    [
      "http://[64:ff9b::169.254.169.254]/",
      /NAT64 address 64:ff9b::a9fe:a9fe embeds cloud metadata address 169\.254\.169\.254/,
    ],
    ["http://[64:ff9b::100.64.0.1]/", /NAT64 .* embeds shared \(CGNAT\) address 100\.64\.0\.1/],
    ["http://[2002:c0a8:101::1]/", /6to4 address 2002:c0a8:101::1 embeds private address 192\.168\.1\.1/],
    ["http://[2002:c000:2ff::]/", /6to4 .* embeds documentation address 192\.0\.2\.255/],
    // Teredo's client address is obfuscated (XOR): refused whatever it carries.
    ["http://[2001:0:4136:e378:8000:63bf:f7f7:f7f7]/", /Teredo address .* \(TEREDO, 2001::\/32\)/],
    ["http://[2001::1]/", /Teredo address 2001::1 /],
  ])("refuses %s", (input, reason) => expectBlocked(input, reason));

  it("refuses an IPv4-translated address whatever IPv4 address it carries, with or without the loopback allowance", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff_ffff }), fc.boolean(), (n, allowLoopback) => {
        const dotted = [24, 16, 8, 0].map((s) => (n >>> s) & 0xff).join(".");
        expect(checkTarget(`http://[::ffff:0:${dotted}]/`, { allowLoopback })).toMatchObject({
          ok: false,
          reason: expect.stringContaining("IPv4-translated"),
        });
      }),
    );
  });

  it("judges any NAT64 or 6to4 address by the IPv4 address it carries", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff_ffff }), (n) => {
        const dotted = [24, 16, 8, 0].map((s) => (n >>> s) & 0xff).join(".");
        const [hi, lo] = [(n >>> 16).toString(16), (n & 0xffff).toString(16)];
        const direct = checkTarget(`http://${dotted}/`).ok;
        expect(checkTarget(`http://[64:ff9b::${dotted}]/`).ok).toBe(direct);
        expect(checkTarget(`http://[2002:${hi}:${lo}::1]/`).ok).toBe(direct);
      }),
    );
  });
});

/** Thirty-two hex digits for an IPv6 address written with `::` (no dotted tail). */
function expandIpv6(text: string): string {
  const [head = "", tail] = text.split("::");
  const groupsOf = (part: string) => (part === "" ? [] : part.split(":"));
  const left = groupsOf(head);
  const right = tail === undefined ? [] : groupsOf(tail);
  const middle = Array<string>(8 - left.length - right.length).fill("0");
  return [...left, ...middle, ...right].map((g) => g.padStart(4, "0")).join("");
}
