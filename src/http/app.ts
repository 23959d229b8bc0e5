/** The Worker's HTTP surface: middleware, routes, the OpenAPI document, and error handling. */
import { OpenAPIHono, type z } from "@hono/zod-openapi";
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { AppEnv } from "../env";
import { requireAdmin, requireApiKey } from "./auth";
import { isPrimaryBatchRead } from "./batch-reads";
import { rateLimit } from "./rate-limit";
import { ApiError, handleError } from "./errors";
import { dashboard } from "./dashboard";
import { docs } from "./docs";
import { health } from "./health";
import { observe } from "./observability";
import { admin } from "./routes/admin";
import { adminStats } from "./routes/admin-stats";
import { batchResults } from "./routes/batch-results";
import { batches } from "./routes/batches";
import { credits } from "./routes/credits";
import { live } from "./routes/live";
import { firecrawlError } from "./firecrawl/envelope";
import { firecrawl } from "./routes/firecrawl";
import { serpwow } from "./routes/serpwow";
import { usage } from "./routes/usage";
import { errorResponsesWith } from "./schemas";
import { webhooks } from "./routes/webhooks";
import { positiveInt } from "../lib/positive-int";

const DEFAULT_MAX_BODY_BYTES = 3 * 1024 * 1024;
const JSON_TYPE = /^application\/([\w.-]+\+)?json\s*(;|$)/i;

/** 413 for bodies over MAX_BODY_BYTES, checked before anything reads them. */
const limitBody: MiddlewareHandler<AppEnv> = (c, next) => {
  if (c.req.raw.body === null) return next(); // a GET, a poll: nothing to limit, no limiter to build
  const maxSize = positiveInt(c.env.MAX_BODY_BYTES, DEFAULT_MAX_BODY_BYTES);
  return bodyLimit({
    maxSize,
    onError: () => {
      throw new ApiError(413, "PAYLOAD_TOO_LARGE", `Request body is larger than ${maxSize} bytes.`);
    },
  })(c, next);
};

/** A body we would otherwise ignore silently (form posts, text) is refused with 415. */
const requireJsonBody: MiddlewareHandler<AppEnv> = async (c, next) => {
  const hasBody = Number(c.req.header("content-length") ?? 0) > 0 || c.req.header("transfer-encoding") !== undefined;
  if (hasBody && !JSON_TYPE.test(c.req.header("content-type") ?? "")) {
    throw new ApiError(415, "UNSUPPORTED_MEDIA_TYPE", "Request body must be JSON (Content-Type: application/json).");
  }
  await next();
};

export function createApp() {
  const app = new OpenAPIHono<AppEnv>();
  // First: every response, errors included, gets its request id and its log line.
  app.use("*", observe());
  app.use("*", limitBody, requireJsonBody);
  // Reads of one batch leave the key to the batch object (src/http/batch-reads.ts).
  app.use("/api/*", requireApiKey({ batchRead: isPrimaryBatchRead }));
  // Rate limits run after auth (they count per key) and before any object is touched. One
  // limiter counts a request: the first registered that matches, so GET /api/* comes last.
  app.on("POST", "/api/batch/scrape", rateLimit("CREATE_LIMITER"));
  app.on("DELETE", "/api/batch/scrape/:batchId", rateLimit("CANCEL_LIMITER"));
  app.on("POST", "/api/batch/scrape/cancel-all", rateLimit("CANCEL_LIMITER"));
  app.on("POST", "/api/webhooks/secret/rotate", rateLimit("WEBHOOK_SECRET_LIMITER"));
  app.on("POST", "/api/batch/scrape/:batchId/retry", rateLimit("RETRY_LIMITER"));
  app.on("GET", "/api/batch/scrape/:batchId/live", rateLimit("LIVE_LIMITER"));
  // Polls the batch object answers are limited by it instead (src/batch/poll-budget.ts).
  app.on("GET", "/api/*", rateLimit("READ_LIMITER", { exceptPolls: true }));
  app.use("/admin/*", requireAdmin());

  app.route("/", health);
  app.route("/", dashboard);
  app.route("/", docs);
  app.route("/", batches);
  app.route("/", batchResults);
  app.route("/", live);
  app.route("/", credits);
  app.route("/", usage);
  app.route("/", admin);
  app.route("/", adminStats);
  app.route("/", serpwow);
  app.route("/", firecrawl);
  app.route("/", webhooks);

  documentKeyedErrors(app);
  app.openAPIRegistry.registerComponent("securitySchemes", "ApiKeyAuth", {
    type: "apiKey",
    in: "header",
    name: "x-api-key",
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "ApiKeyBearer", {
    type: "http",
    scheme: "bearer",
    description: "The API key as `Authorization: Bearer <key>` (never the admin token).",
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "AdminToken", {
    type: "http",
    scheme: "bearer",
    description: "ADMIN_TOKEN, on /admin/* only (never an API key).",
  });
  app.openAPIRegistry.registerComponent("securitySchemes", "ApiKeyQuery", {
    type: "apiKey",
    in: "query",
    name: "api_key",
  });
  app.doc31("/openapi.json", {
    openapi: "3.1.0",
    info: {
      title: "Batch scrape API",
      version: "1.0.0",
      description: "Batch web scraping with credits reserved up front, race-free cancel and exact refunds.",
    },
  });

  const allowedMethods = methodsByPath(app);
  app.notFound((c) => {
    const allowed = allowedMethods(c.req.path);
    if (allowed.length > 0) {
      throw new ApiError(
        405,
        "METHOD_NOT_ALLOWED",
        `Method ${c.req.method} is not allowed here; use ${allowed.join(", ")}.`,
        {
          Allow: allowed.join(", "),
        },
      );
    }
    throw new ApiError(404, "NOT_FOUND", "Route not found.");
  });
  // /v2 is the Firecrawl-compatible surface: errors raised before its router (body limits,
  // content type) answer in its envelope too.
  app.onError((err, c) => (c.req.path.startsWith("/v2/") ? firecrawlError(err, c) : handleError(err, c)));
  return app;
}

/**
 * Every keyed operation takes the key as a Bearer token too, and can answer 429 (failed
 * authentications, per-key limits) and 503 (no API_KEY_MAC_SECRET): the middleware adds
 * them to all, so they are documented here, once,
 * in each operation's own error envelope (that of its 401). Replaces the app's copies of the
 * route definitions; the routers' own stay as they are.
 */
function documentKeyedErrors(app: OpenAPIHono<AppEnv>) {
  for (const def of app.openAPIRegistry.definitions) {
    if (def.type !== "route") continue;
    const keyed = def.route.security?.some((s) => "ApiKeyAuth" in s || "ApiKeyQuery" in s);
    const unauthorized = def.route.responses[401];
    const media = unauthorized && "content" in unauthorized ? unauthorized.content?.["application/json"] : undefined;
    const schema = media && "schema" in media ? media.schema : undefined;
    if (!keyed || !schema) continue;
    def.route = {
      ...def.route,
      // Wherever x-api-key works, so does Authorization: Bearer <key> (src/http/auth.ts).
      security: [...(def.route.security ?? []), { ApiKeyBearer: [] }],
      responses: { ...errorResponsesWith(schema as z.ZodType, 429, 503), ...def.route.responses },
    };
  }
}

/** Which methods the app serves at a path, so a wrong method gets 405 rather than 404. */
function methodsByPath(app: OpenAPIHono<AppEnv>) {
  let table: { pattern: RegExp; method: string }[] | undefined;
  return (path: string): string[] => {
    table ??= app.routes
      // Wildcard paths are middleware (the read limit on GET /api/*), not routes.
      .filter((r) => r.method !== "ALL" && !r.path.includes("*"))
      .map((r) => ({ method: r.method, pattern: new RegExp(`^${r.path.replace(/:[^/]+/g, "[^/]+")}$`) }));
    return [...new Set(table.filter((r) => r.pattern.test(path)).map((r) => r.method))];
  };
}
