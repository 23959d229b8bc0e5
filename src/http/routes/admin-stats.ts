/**
 * GET /admin/stats (bearer ADMIN_TOKEN): what the service holds and does, as the objects see it.
 *
 * Across accounts it walks the registry a page at a time (`limit` accounts, 1000 at most,
 * then `nextCursor`) and asks each account object, STATS_CONCURRENCY at once; each account
 * asks its own active batches (at most 100, see AccountObject.stats). Numbers are summed
 * over the page only: an operator with more accounts follows the cursor. `?accountId=`
 * answers for one account. Dead letters are counted in R2, up to DEAD_LETTER_PAGES pages.
 */
import { createRoute, z } from "@hono/zod-openapi";
import type { AccountStats } from "../../account/account-object";
import { ZERO_BALANCES } from "../../domain/credits";
import { accountNotFound } from "../../domain/errors";
import { log } from "../../lib/log";
import { mapBounded } from "../../lib/map-bounded";
import { accountObject, registryObject, requireUuid, unwrap } from "../objects";
import { CursorSchema, errorResponses, pageQuery } from "../schemas";
import { newRouter } from "../validation";
import { BalancesSchema } from "./credits";

const MAX_ACCOUNTS_PER_PAGE = 1000;
/** Account objects asked at once: keeps one stats request from flooding the objects. */
const STATS_CONCURRENCY = 16;
const DEAD_LETTER_PAGES = 10;
const BATCH_STATES = ["pending", "running", "completed", "failed", "cancelled", "expired"] as const;

const count = z.number().int();
const StatsSchema = z
  .object({
    generatedAt: z.string(),
    accounts: z.object({
      counted: count.openapi({ description: "Accounts summed in this answer" }),
      total: count.openapi({ description: "Accounts in the registry" }),
      unreachable: count.openapi({ description: "Accounts that did not answer (left out of the sums)" }),
      closed: count.openapi({ description: "Counted accounts that are closed (their books are in the sums)" }),
      partial: z.boolean().openapi({
        description: "Some account could not ask all its active batches (over 100, or one did not answer)",
      }),
      nextCursor: z.string().nullable().openapi({ description: "Pass as ?cursor= for the next page of accounts" }),
    }),
    batches: z.object(
      Object.fromEntries(BATCH_STATES.map((s) => [s, count])) as Record<(typeof BATCH_STATES)[number], typeof count>,
    ),
    items: z.object({
      pending: count.openapi({ description: "Not started yet (queued ones included)" }),
      running: count.openapi({ description: "Leased by an executor now: in flight" }),
      queued: count.openapi({
        description: "Sent to the queue, not started yet: the backlog as the batch objects see it",
      }),
    }),
    credits: BalancesSchema,
    deadLetters: z.object({ count, more: z.boolean().openapi({ description: "More than were counted" }) }),
  })
  .openapi("Stats");

const route = createRoute({
  method: "get",
  path: "/admin/stats",
  tags: ["Admin"],
  summary: "Batches by state, items in flight and queued, credits reserved, dead letters",
  security: [{ AdminToken: [] }],
  request: {
    query: z.object({
      accountId: z.string().optional().openapi({ description: "One account only" }),
      cursor: CursorSchema,
      limit: pageQuery(MAX_ACCOUNTS_PER_PAGE, MAX_ACCOUNTS_PER_PAGE),
    }),
  },
  responses: {
    200: { description: "Stats", content: { "application/json": { schema: StatsSchema } } },
    ...errorResponses(400, 401, 403, 404),
  },
});

export const adminStats = newRouter().openapi(route, async (c) => {
  const { accountId: rawId, cursor, limit } = c.req.valid("query");
  let accountIds: string[];
  let total: number;
  let nextCursor: number | null = null;
  if (rawId !== undefined) {
    accountIds = [requireUuid(rawId, "account")];
    total = 1;
  } else {
    const page = await registryObject(c.env).list(cursor === undefined ? null : Number(cursor), limit);
    ({ accountIds, total, nextCursor } = page);
  }

  const answers = await mapBounded(
    accountIds,
    STATS_CONCURRENCY,
    async (id): Promise<AccountStats | null | "unreachable"> => {
      try {
        return await accountObject(c.env, id).stats();
      } catch (err) {
        log("warn", "stats: account did not answer", {
          requestId: c.get("requestId"),
          accountId: id,
          error: String(err),
        });
        return "unreachable";
      }
    },
  );
  // The account object answers null for an account never opened.
  if (rawId !== undefined && answers[0] === null) unwrap(accountNotFound());

  const batches = Object.fromEntries(BATCH_STATES.map((s) => [s, 0])) as Record<(typeof BATCH_STATES)[number], number>;
  const items = { pending: 0, running: 0, queued: 0 };
  const credits = { ...ZERO_BALANCES };
  let counted = 0;
  let closed = 0;
  let partial = false;
  for (const a of answers) {
    if (a === null || a === "unreachable") continue;
    counted++;
    if (a.closed) closed++;
    partial ||= a.partial;
    for (const s of BATCH_STATES) batches[s] += a.batches[s] ?? 0;
    items.pending += a.items.pending;
    items.running += a.items.running;
    items.queued += a.items.queued;
    for (const k of Object.keys(credits) as (keyof typeof credits)[]) credits[k] += a.credits[k];
  }

  return c.json(
    {
      generatedAt: new Date().toISOString(),
      accounts: {
        counted,
        total,
        unreachable: answers.filter((a) => a === "unreachable").length,
        closed,
        partial,
        nextCursor: nextCursor === null ? null : String(nextCursor),
      },
      batches,
      items,
      credits,
      deadLetters: await countDeadLetters(c.env.RESULTS),
    },
    200,
  );
});

/** Dead-lettered messages recorded by the consumer under dead-letters/ (see consumeDeadLetters). */
async function countDeadLetters(bucket: R2Bucket): Promise<{ count: number; more: boolean }> {
  let count = 0;
  let cursor: string | undefined;
  for (let page = 0; page < DEAD_LETTER_PAGES; page++) {
    const listed = await bucket.list({ prefix: "dead-letters/", limit: 1000, cursor });
    count += listed.objects.length;
    if (!listed.truncated) return { count, more: false };
    cursor = listed.cursor;
  }
  return { count, more: true };
}
