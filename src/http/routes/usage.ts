/** GET /api/usage-stats: the account's usage by day or week, in the shape Spidra's SDK reads (`usage.get`). */
import { createRoute, z } from "@hono/zod-openapi";
import { periods, USAGE_RANGES, usageRows } from "../../domain/usage-range";
import { accountObject } from "../objects";
import { errorResponses } from "../schemas";
import { newRouter } from "../validation";

const UsageRowSchema = z
  .object({
    label: z.string().openapi({ description: 'Chart label: "Apr 16" (a day) or "Apr 14-20" (a week)' }),
    date: z.string().openapi({ description: 'YYYY-MM-DD (a day) or "Apr 14 – Apr 20" (a week), UTC' }),
    tokens: z.number().int().openapi({ description: "AI tokens: 0 (extraction here uses no AI)" }),
    requests: z
      .number()
      .int()
      .openapi({ description: "Pages fetched: items that completed or failed in the period (a retry counts again)" }),
    crawls: z.number().int().openapi({ description: "0: no crawls here" }),
    captchas: z.number().int().openapi({ description: "0: no CAPTCHAs are solved here" }),
    latency: z.number().int().openapi({ description: "Mean fetch time of those items, in ms (0 when none)" }),
    credits: z.number().int().openapi({ description: "Credits charged in the period (= creditsCharged)" }),
    creditsReserved: z.number().int().openapi({ description: "Credits reserved (batches created, retries)" }),
    creditsCharged: z.number().int(),
    creditsRefunded: z.number().int().openapi({ description: "Credits returned (failed and cancelled items)" }),
    items: z
      .object({ completed: z.number().int(), failed: z.number().int(), cancelled: z.number().int() })
      .openapi({ description: "Items that reached each state in the period" }),
  })
  .openapi("UsageRow");

const stats = createRoute({
  method: "get",
  path: "/api/usage-stats",
  tags: ["Credits"],
  summary: "Your usage by day or week",
  description:
    "From your credit ledger: `7d` and `30d` give one row per UTC day, `weekly` one per ISO week (Monday to Sunday), 7 weeks; oldest first, the last row is the current day or week. The shape of Spidra's usage stats (its SDK's `usage.get` reads `data`), with our own figures after Spidra's.",
  security: [{ ApiKeyAuth: [] }],
  request: {
    query: z.object({
      range: z.enum(USAGE_RANGES, { error: `must be one of ${USAGE_RANGES.join(", ")}` }).openapi({ example: "7d" }),
    }),
  },
  responses: {
    200: {
      description: "Usage rows",
      content: {
        "application/json": {
          schema: z.object({
            status: z.literal("success"),
            range: z.enum(USAGE_RANGES),
            data: z.array(UsageRowSchema),
          }),
        },
      },
    },
    ...errorResponses(400, 401, 403),
  },
});

export const usageRoutes = { stats };

export const usage = newRouter().openapi(stats, async (c) => {
  const { range } = c.req.valid("query");
  const now = Date.now();
  const all = periods(range, now);
  const days = await accountObject(c.env, c.get("accountId")).usageDays(all[0]!.fromDay, all[all.length - 1]!.toDay);
  return c.json({ status: "success" as const, range, data: usageRows(range, now, days) }, 200);
});
