/** The one way routes reach the Durable Objects, and turn their failures into API errors. */
import { ERROR_STATUS, type Failure } from "../domain/errors";
import type { Env } from "../env";
import { REGISTRY_NAME } from "../registry/registry-object";
import { ApiError } from "./errors";

export function accountObject(env: Env, accountId: string) {
  return env.ACCOUNT.getByName(accountId);
}

export function batchObject(env: Env, batchId: string) {
  return env.BATCH.getByName(batchId);
}

/** Returns the success value, or throws the failure as an ApiError with its status. */
export function unwrap<R extends { ok: true } | Failure>(result: R): Extract<R, { ok: true }> {
  if (result.ok) return result as Extract<R, { ok: true }>;
  const failure = result as Failure & { retryAfterSeconds?: number };
  // A refusal that says when to come back (a poll over its budget, src/batch/poll-budget.ts).
  const headers =
    failure.retryAfterSeconds === undefined ? undefined : { "Retry-After": String(failure.retryAfterSeconds) };
  throw new ApiError(ERROR_STATUS[failure.code], failure.code, failure.message, headers);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function isUuid(id: string): boolean {
  return UUID.test(id.toLowerCase());
}

/** Ids are UUIDs; anything else is simply not found (and never reaches an object). */
export function requireUuid(id: string, what: string): string {
  if (!isUuid(id)) throw new ApiError(404, "NOT_FOUND", `No ${what} found with this ID.`);
  return id.toLowerCase();
}

/** The one registry of account ids (for operator-wide stats). */
export function registryObject(env: Env) {
  return env.REGISTRY.getByName(REGISTRY_NAME);
}
