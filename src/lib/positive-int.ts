/** A var that must be a positive whole number: its value, or `fallback` when unset or invalid. */
export function positiveInt(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return Number.isSafeInteger(n) && n > 0 ? n : fallback;
}
