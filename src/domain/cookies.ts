/**
 * The `cookies` create field: a Cookie header value as Spidra documents it,
 * "name=value; name2=value2" (RFC 6265 section 4.2.1). Checked when the batch is created;
 * messages never quote the value (it is a credential).
 */

/** Bytes of the whole string; browsers send about 4 KB per cookie and servers refuse headers past 8-16 KB. */
export const MAX_COOKIES_BYTES = 8 * 1024;
export const MAX_COOKIE_PAIRS = 100;

/** RFC 6265 cookie-name: an RFC 7230 token. */
const NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** RFC 6265 cookie-octet (printable ASCII except space, `"`, `,`, `;`, `\`), optionally in double quotes. */
const VALUE = /^(?:[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*|"[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*")$/;

/** Why `cookies` is not a usable Cookie header value, or null. Never quotes the value. */
export function cookiesProblem(cookies: string): string | null {
  if (/[\r\n\0]/.test(cookies)) return "must not contain CR, LF or NUL characters";
  if (new TextEncoder().encode(cookies).length > MAX_COOKIES_BYTES) return `must be at most ${MAX_COOKIES_BYTES} bytes`;
  const pairs = cookies.split(";").map((pair) => pair.trim());
  // One trailing ";" is common when people paste from a browser.
  if (pairs.length > 1 && pairs[pairs.length - 1] === "") pairs.pop();
  if (pairs.length > MAX_COOKIE_PAIRS) return `must hold at most ${MAX_COOKIE_PAIRS} cookies`;
  for (const [i, pair] of pairs.entries()) {
    const eq = pair.indexOf("=");
    if (eq <= 0) return `cookie ${i + 1} is not name=value (format: "name=value; name2=value2")`;
    if (!NAME.test(pair.slice(0, eq))) return `cookie ${i + 1} has a name with characters a cookie name cannot hold`;
    if (!VALUE.test(pair.slice(eq + 1)))
      return `cookie ${i + 1} has a value with characters a cookie value cannot hold`;
  }
  return null;
}

/** The header value to send: the pairs as given, joined the way RFC 6265 says a user agent does. */
export function cookieHeader(cookies: string): string {
  return cookies
    .split(";")
    .map((pair) => pair.trim())
    .filter((pair) => pair !== "")
    .join("; ");
}
