/**
 * Firecrawl's error envelope, `{ success: false, error }` (plus our `code`), with the status
 * and headers the primary handler chose: the same errors, the same message cap, no stack
 * trace (handleError hides anything unexpected as a 500).
 */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { AppEnv } from "../../env";
import { handleError } from "../errors";

export async function firecrawlError(err: Error, c: Context<AppEnv>) {
  const res = await handleError(err, c);
  const body = (await res.json()) as { message?: string; code?: string };
  const headers = Object.fromEntries(
    [...res.headers].filter(([name]) => name !== "content-length" && name !== "content-type"),
  );
  return c.json(
    { success: false as const, error: body.message ?? "Error", code: body.code ?? "INTERNAL_ERROR" },
    res.status as ContentfulStatusCode,
    headers,
  );
}
