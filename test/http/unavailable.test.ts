import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import type { AppEnv } from "../../src/env";
import { handleError } from "../../src/http/errors";

function appThrowing(err: Error) {
  return new Hono<AppEnv>()
    .get("/x", () => {
      throw err;
    })
    .onError(handleError);
}

describe("errors from an object that was reset or overloaded", () => {
  it.each([["retryable"], ["overloaded"]])(
    "an error marked %s answers 503 UNAVAILABLE with Retry-After, no detail",
    async (flag) => {
      const res = await appThrowing(
        Object.assign(new Error("Durable Object reset because its code was updated."), { [flag]: true }),
      ).request("/x");
      expect(res.status).toBe(503);
      expect(res.headers.get("retry-after")).toBe("1");
      const body = await res.json<Record<string, unknown>>();
      expect(body).toMatchObject({
        status: "error",
        code: "UNAVAILABLE",
        message: "Temporarily unavailable; please retry.",
      });
      expect(JSON.stringify(body)).not.toContain("reset");
    },
  );

  it("any other error is still a 500 with no detail", async () => {
    const res = await appThrowing(new Error("boom at line 12")).request("/x");
    expect(res.status).toBe(500);
    expect(JSON.stringify(await res.json())).not.toContain("boom");
  });
});
