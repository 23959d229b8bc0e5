import { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv, Env } from "./env";
import { ApiError, handleError } from "./http/errors";
import { health } from "./http/health";

const app = new OpenAPIHono<AppEnv>();
app.route("/", health);
app.notFound(() => {
  throw new ApiError(404, "NOT_FOUND", "Route not found.");
});
app.onError(handleError);

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Env>;

export { AccountObject } from "./account/account-object";
export { BatchObject } from "./batch/batch-object";
