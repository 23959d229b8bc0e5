/**
 * Character references, decoded the way browsers do for the references pages use. Linear:
 * one pass of a pattern whose parts are all bounded (at most 8 digits or 32 letters).
 */

/** Latin-1 entity names, in code point order from U+00A0. */
const LATIN1_NAMES =
  "nbsp iexcl cent pound curren yen brvbar sect uml copy ordf laquo not shy reg macr deg plusmn sup2 sup3 " +
  "acute micro para middot cedil sup1 ordm raquo frac14 frac12 frac34 iquest Agrave Aacute Acirc Atilde " +
  "Auml Aring AElig Ccedil Egrave Eacute Ecirc Euml Igrave Iacute Icirc Iuml ETH Ntilde Ograve Oacute " +
  "Ocirc Otilde Ouml times Oslash Ugrave Uacute Ucirc Uuml Yacute THORN szlig agrave aacute acirc atilde " +
  "auml aring aelig ccedil egrave eacute ecirc euml igrave iacute icirc iuml eth ntilde ograve oacute " +
  "ocirc otilde ouml divide oslash ugrave uacute ucirc uuml yacute thorn yuml";

const NAMED_ENTITIES = new Map<string, string>([
  ...LATIN1_NAMES.split(" ").map((name, i): [string, string] => [name, String.fromCharCode(0xa0 + i)]),
  ["amp", "&"],
  ["lt", "<"],
  ["gt", ">"],
  ["quot", '"'],
  ["apos", "'"],
  ["hellip", "\u2026"],
  ["mdash", "\u2014"],
  ["ndash", "\u2013"],
  ["lsquo", "\u2018"],
  ["rsquo", "\u2019"],
  ["ldquo", "\u201c"],
  ["rdquo", "\u201d"],
  ["sbquo", "\u201a"],
  ["bdquo", "\u201e"],
  ["trade", "\u2122"],
  ["euro", "\u20ac"],
  ["bull", "\u2022"],
  ["dagger", "\u2020"],
  ["prime", "\u2032"],
  ["minus", "\u2212"],
  ["larr", "\u2190"],
  ["rarr", "\u2192"],
  ["ensp", "\u2002"],
  ["emsp", "\u2003"],
  ["thinsp", "\u2009"],
  ["zwnj", "\u200c"],
  ["zwj", "\u200d"],
  ["OElig", "\u0152"],
  ["oelig", "\u0153"],
  ["Scaron", "\u0160"],
  ["scaron", "\u0161"],
]);

/** Names browsers also decode without the `;` (the common part of the legacy list). */
const LEGACY_ENTITIES = new Set(["amp", "lt", "gt", "quot", "nbsp", "copy", "reg"]);

/** What browsers show for `&#128;`..`&#159;`: those windows-1252 characters, not C1 controls. */
const WINDOWS_1252_C1 =
  "\u20ac\u0081\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u008d\u017d\u008f" +
  "\u0090\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u009d\u017e\u0178";

function fromCodePoint(code: number): string {
  if (code >= 0x80 && code <= 0x9f) return WINDOWS_1252_C1.charAt(code - 0x80);
  if (code === 0 || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return "\ufffd";
  return String.fromCodePoint(code);
}

const ENTITY = /&(?:#(\d{1,8})|#[xX]([0-9a-fA-F]{1,7})|([A-Za-z][A-Za-z0-9]{0,31}))(;?)/g;

/**
 * Decodes character references: numeric ones and the named ones above; others stay as
 * written. In attribute values a `;`-less name followed by `=` stays, as in browsers,
 * so query strings such as `?a=1&copy=2` survive.
 */
export function decodeEntities(raw: string, inAttribute: boolean): string {
  if (!raw.includes("&")) return raw;
  return raw.replace(ENTITY, (whole, dec?: string, hex?: string, name?: string, semi?: string, at?: number) => {
    if (dec !== undefined) return fromCodePoint(Number.parseInt(dec, 10));
    if (hex !== undefined) return fromCodePoint(Number.parseInt(hex, 16));
    const value = name === undefined ? undefined : NAMED_ENTITIES.get(name);
    if (value === undefined) return whole;
    if (semi === ";") return value;
    const next = raw.charAt((at ?? 0) + whole.length);
    return LEGACY_ENTITIES.has(name ?? "") && !(inAttribute && next === "=") ? value : whole;
  });
}
