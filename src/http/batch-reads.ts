/**
 * Reads of one batch (status, item pages, a result, a live view, SerpWow's batch) with one
 * object call: the batch object's, which checks the API key from its own copy of the key's
 * validity (src/batch/key-copies.ts) instead of the Worker asking the account object first.
 * The middleware (requireApiKey with `batchRead`) checked the key's MAC and the failure
 * limits; the batch object answers:
 *
 * - the read: the key is valid (`accountId` is set now);
 * - INVALID_API_KEY: revoked, expired or unknown: refused and counted, as the account would;
 * - RATE_LIMITED (429, Retry-After): the key is valid but over its poll budget for this batch
 *   (src/batch/poll-budget.ts). Polls the batch object answers are not counted by READ_LIMITER,
 *   except those it answered by asking the account (`accountAnswered`: no copy kept);
 * - KEY_UNCHECKED: not this account's batch (or none): the account checks the key, then
 *   READ_LIMITER counts the read, which runs the account's way, so a bad key is still 403, a
 *   foreign batch still 404, and scanning ids is limited per key.
 *
 * docs/scaling.md ("Polling without the account object") has the design and its limits.
 */
import type { Context } from "hono";
import type { Failure } from "../domain/errors";
import type { KeyClaim, KeyUnchecked } from "../domain/key-claim";
import type { AppEnv } from "../env";
import { ApiError } from "./errors";
import { isUuid, unwrap } from "./objects";

/**
 * `read` through the batch object with the key's claim (`viaBatch`) when the middleware left
 * the key to it, else (the key already checked by the account) `viaAccount`. `ids` are the
 * path's ids: one that is not a UUID is 404 NOT_FOUND, once the key is known valid.
 */
export async function readBatch<A extends { ok: true } | Failure>(
  c: Context<AppEnv>,
  ids: { raw: string; what: string }[],
  viaBatch: (claim: KeyClaim, ids: string[]) => Promise<NoInfer<A> | KeyUnchecked>,
  viaAccount: (accountId: string, ids: string[]) => Promise<A>,
): Promise<Extract<A, { ok: true }>> {
  const claim = c.get("keyClaim");
  const check = c.get("keyCheck");
  const parsed = ids.map((id) => id.raw.toLowerCase());
  const bad = ids.find((id) => !isUuid(id.raw));
  if (claim === undefined) {
    if (bad) throw notFound(bad.what);
    return unwrap(await viaAccount(c.get("accountId"), parsed));
  }
  if (!bad) {
    const answer = (await viaBatch(claim, parsed)) as A | KeyUnchecked;
    // Answered by the account through the batch object (no copy kept): READ_LIMITER counts it.
    if ("accountAnswered" in answer) await c.get("countIfFallback")?.();
    if (answer.ok || answer.code !== "KEY_UNCHECKED") {
      if (!answer.ok && answer.code === "INVALID_API_KEY") return check.refuse();
      // Accepted: the read, or the batch object's own refusal (no such item, say).
      c.set("accountId", claim.accountId);
      return unwrap(answer as A);
    }
  }
  await check.withAccount();
  await c.get("countIfFallback")?.(); // READ_LIMITER, held back for the batch object (src/http/rate-limit.ts)
  if (bad) throw notFound(bad.what);
  return unwrap(await viaAccount(claim.accountId, parsed));
}

/** For a route that must check the key before any other refusal (426 on the live route). */
export async function ensureKeyChecked(c: Context<AppEnv>): Promise<void> {
  if (c.get("keyClaim") !== undefined && c.get("accountId") === undefined) await c.get("keyCheck").withAccount();
}

function notFound(what: string): ApiError {
  return new ApiError(404, "NOT_FOUND", `No ${what} found with this ID.`);
}

/** GET, or HEAD (Hono answers it with the GET route, without the body). */
function isRead(c: Context<AppEnv>): boolean {
  return c.req.method === "GET" || c.req.method === "HEAD";
}

/** Which requests the middleware leaves to the batch object: reads of one batch, its result, its live view. */
export function isPrimaryBatchRead(c: Context<AppEnv>): boolean {
  return isRead(c) && /^\/api\/batch\/scrape\/[^/]+(?:\/live|\/items\/[^/]+\/result)?$/.test(c.req.path);
}

/** SerpWow's GET /live/batches/{id} (not /live/batches/stopall, which stops every batch). */
export function isSerpWowBatchRead(c: Context<AppEnv>): boolean {
  return isRead(c) && /^\/live\/batches\/[^/]+$/.test(c.req.path) && c.req.path !== "/live/batches/stopall";
}
