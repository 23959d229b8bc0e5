/**
 * Turns a fetched body into text, choosing the charset the way a browser would, in short:
 * byte order mark, then the Content-Type header, then a `<meta>` declaration near the
 * top of the document, then UTF-8. Decoding never throws: unknown labels fall back to
 * UTF-8 and undecodable bytes become U+FFFD.
 */

/** How far into the body a `<meta>` charset declaration is looked for. */
const SNIFF_BYTES = 2048;

const FALLBACK = "utf-8";

/** `charset=` in a Content-Type value, or in a `<meta>` tag's text (both forms of declaration). */
const CHARSET_PARAM = /charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)/i;
const META_TAG = /<meta\b[^>]*>/gi;

function byteOrderMark(bytes: Uint8Array): string | null {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return "utf-8";
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return "utf-16le";
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return "utf-16be";
  return null;
}

function fromContentType(contentType: string | null): string | null {
  return contentType ? (CHARSET_PARAM.exec(contentType)?.[1] ?? null) : null;
}

function fromMetaTag(bytes: Uint8Array): string | null {
  // windows-1252 maps every byte, so ASCII markup reads the same whatever the real charset.
  const head = new TextDecoder("windows-1252").decode(bytes.subarray(0, SNIFF_BYTES));
  for (const [tag] of head.matchAll(META_TAG)) {
    const label = CHARSET_PARAM.exec(tag)?.[1];
    // A page that says UTF-16 in ASCII markup cannot be UTF-16: browsers read it as UTF-8.
    if (label) return /^utf-?16/i.test(label) ? FALLBACK : label;
  }
  return null;
}

/** The WHATWG encoding name for `label`, or null if TextDecoder does not know it. */
function encodingFor(label: string): string | null {
  try {
    return new TextDecoder(label).encoding;
  } catch {
    return null;
  }
}

/** The encoding the body will be decoded with: a WHATWG name such as `windows-1252`. */
export function detectCharset(bytes: Uint8Array, contentType: string | null): string {
  const bom = byteOrderMark(bytes);
  if (bom) return bom;
  for (const label of [fromContentType(contentType), fromMetaTag(bytes)]) {
    const encoding = label === null ? null : encodingFor(label);
    if (encoding) return encoding;
  }
  return FALLBACK;
}

export function decodeBody(bytes: Uint8Array, contentType: string | null): string {
  // The decoder drops a BOM that matches its encoding.
  return new TextDecoder(detectCharset(bytes, contentType)).decode(bytes);
}
