/**
 * CSV for the results download: RFC 4180 (comma-separated, CRLF line ends, a field with a
 * comma, quote, CR or LF is quoted and its quotes doubled), UTF-8 without a byte-order mark.
 *
 * Formula injection: a spreadsheet runs a cell that starts with `=`, `+`, `-`, `@`, a tab or
 * a carriage return as a formula. Every text cell that could carry someone else's text (a
 * page's content, a URL, an error, your customId or metadata) and starts with one of those
 * gets a leading `'` (OWASP's advice), which spreadsheets show as text. Numbers we write
 * ourselves (index, creditsUsed) are left as they are. To get the exact text back, use
 * the NDJSON form, or drop one leading `'` before one of those characters.
 */
const NEEDS_QUOTES = /[",\r\n]/;
const FORMULA_START = /^[=+\-@\t\r]/;

/** One text cell: guarded against formulas, quoted when needed. */
export function textCell(value: string | null): string {
  if (value === null) return "";
  const safe = FORMULA_START.test(value) ? `'${value}` : value;
  return NEEDS_QUOTES.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

/** A number we produced ourselves: never quoted, never guarded. */
export function numberCell(value: number): string {
  return String(value);
}

export function csvRow(cells: readonly string[]): string {
  return `${cells.join(",")}\r\n`;
}
