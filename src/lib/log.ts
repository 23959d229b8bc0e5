/**
 * The one structured log line of this Worker: a JSON object per line, `level` and `msg` first,
 * then the fields. Info goes to console.log, warn and error to console.error (what `wrangler tail`
 * and Workers Logs show as errors). Callers pass ids and counts, never URLs, headers or keys.
 */
export type LogLevel = "info" | "warn" | "error";

export function log(level: LogLevel, msg: string, fields: Record<string, unknown> = {}): void {
  const line = JSON.stringify({ level, msg, ...fields });
  if (level === "info") console.log(line);
  else console.error(line);
}
