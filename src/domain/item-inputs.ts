/**
 * A batch's items as the caller names them: a URL, and optionally the caller's own id
 * (`customId`) and a small JSON object (`metadata`), both echoed on the item everywhere.
 * The rules here are the API's, for every surface: pure checks, no I/O.
 *
 * customId: 1 to 128 characters, unique within the batch; any printable text (letters of
 * any script, spaces, punctuation), but no control characters (C0, DEL, C1) and no lone
 * surrogates, so it survives JSON, CSV and log lines unchanged.
 * metadata: a JSON object, at most 1024 bytes as UTF-8 JSON and nested at most 4 deep.
 */
export const CUSTOM_ID_MAX_CHARS = 128;
export const METADATA_MAX_BYTES = 1024;
export const METADATA_MAX_DEPTH = 4;

export interface ItemInput {
  url: string;
  customId?: string | null;
  metadata?: Record<string, unknown> | null;
}

/** What the batch object stores beside each URL: the id, and the metadata as its JSON text. */
export interface ItemLabel {
  customId: string | null;
  metadata: string | null;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why `id` cannot be a customId, or null when it can. */
export function customIdProblem(id: string): string | null {
  if (id.length === 0) return "must not be empty";
  if (id.length > CUSTOM_ID_MAX_CHARS) return `must be at most ${CUSTOM_ID_MAX_CHARS} characters`;
  if (CONTROL.test(id)) return "must not contain control characters";
  if (LONE_SURROGATE.test(id)) return "must be valid Unicode text";
  return null;
}

/** Why `value` cannot be metadata, or null when it can. `value` is parsed JSON. */
export function metadataProblem(value: unknown): string | null {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return "must be a JSON object";
  if (depthOf(value, 0) > METADATA_MAX_DEPTH) return `must be nested at most ${METADATA_MAX_DEPTH} levels deep`;
  const bytes = new TextEncoder().encode(JSON.stringify(value)).length;
  if (bytes > METADATA_MAX_BYTES) return `must be at most ${METADATA_MAX_BYTES} bytes as JSON (got ${bytes})`;
  return null;
}

/** Levels of objects and arrays; stops counting once past the limit (a deep body costs the limit, not its depth). */
function depthOf(value: unknown, above: number): number {
  if (value === null || typeof value !== "object") return above;
  const here = above + 1;
  if (here > METADATA_MAX_DEPTH) return here;
  let deepest = here;
  for (const child of Object.values(value)) {
    deepest = Math.max(deepest, depthOf(child, here));
    if (deepest > METADATA_MAX_DEPTH) break;
  }
  return deepest;
}

/**
 * Every item's label, or the first problem naming its field (`urls[3].customId: duplicates
 * urls[1]`). `field` names the list in the caller's request. Null labels when no item has any.
 */
export function labelItems(
  items: readonly ItemInput[],
  field = "urls",
): { ok: true; labels: ItemLabel[] | null } | { ok: false; message: string } {
  const seen = new Map<string, number>();
  const labels: ItemLabel[] = [];
  let any = false;
  for (const [index, item] of items.entries()) {
    const customId = item.customId ?? null;
    const metadata = item.metadata ?? null;
    if (customId !== null) {
      const problem = customIdProblem(customId);
      if (problem) return { ok: false, message: `${field}[${index}].customId: ${problem}` };
      const earlier = seen.get(customId);
      if (earlier !== undefined)
        return { ok: false, message: `${field}[${index}].customId: duplicates ${field}[${earlier}]` };
      seen.set(customId, index);
    }
    if (metadata !== null) {
      const problem = metadataProblem(metadata);
      if (problem) return { ok: false, message: `${field}[${index}].metadata: ${problem}` };
    }
    if (customId !== null || metadata !== null) any = true;
    labels.push({ customId, metadata: metadata === null ? null : JSON.stringify(metadata) });
  }
  return { ok: true, labels: any ? labels : null };
}
