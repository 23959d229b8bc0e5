/** `GET /docs`: the OpenAPI document rendered by Scalar, with runnable examples ("Try it"). */
import { createRoute, z } from "@hono/zod-openapi";
import { Scalar } from "@scalar/hono-api-reference";
import type { AppEnv } from "../env";
import { newRouter } from "./validation";

const route = createRoute({
  method: "get",
  path: "/docs",
  tags: ["Operations"],
  summary: "API reference (HTML)",
  responses: { 200: { description: "The API reference page", content: { "text/html": { schema: z.string() } } } },
});

const render = Scalar<AppEnv>({ url: "/openapi.json", pageTitle: "Batch scrape API" });

export const docs = newRouter().openapi(route, (c) => render(c, async () => {}) as never);
