/**
 * Whitespace and sizes, one definition for every extractor. "Space" is what `\s` and
 * String.prototype.trim() treat as white space: HTML's five ASCII spaces, no-break space
 * and every other Unicode space separator and line terminator (U+1680, U+2000-U+200A,
 * U+2028, U+2029, U+202F, U+205F, U+3000, U+FEFF). Collapsing a run of them is linear:
 * the pattern is a single character class with no alternation to backtrack into.
 */

/** One or more spaces (global: for replace). */
export const SPACE_RUN = /\s+/g;

/** HTML's whitespace collapsing, over every kind of space: runs become one space, ends are trimmed. */
export function collapseWhitespace(text: string): string {
  return text.replace(SPACE_RUN, " ").trim();
}

/** Whether the UTF-16 unit at `i` is a space (or past either end of `text`: false). */
export function isSpaceAt(text: string, i: number): boolean {
  const code = text.charCodeAt(i);
  if (Number.isNaN(code)) return false; // out of range
  if (code <= 0x20) return code === 0x20 || (code >= 0x09 && code <= 0x0d);
  if (code < 0xa0) return false;
  return (
    code === 0xa0 ||
    code === 0x1680 ||
    (code >= 0x2000 && code <= 0x200a) ||
    code === 0x2028 ||
    code === 0x2029 ||
    code === 0x202f ||
    code === 0x205f ||
    code === 0x3000 ||
    code === 0xfeff
  );
}

/** Bytes of `text` in UTF-8 (what R2 stores), in one pass; a lone surrogate counts as U+FFFD (3). */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) continue;
    if (code < 0x800) bytes += 1;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 2; // a pair: 2 units, 4 bytes
      i++;
    } else bytes += 2;
  }
  return bytes;
}
