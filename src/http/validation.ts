import type { Hook } from "@hono/zod-openapi";
import { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../env";
import { ApiError } from "./errors";

interface Issue {
  code: string;
  path: PropertyKey[];
  message: string;
  keys?: string[];
}

/** `urls[3]`, `selectors.title`: the field a message is about, as a user would write it. */
export function fieldName(path: PropertyKey[]): string {
  return path.reduce<string>((acc, part) => {
    if (typeof part === "number") return `${acc}[${part}]`;
    return acc ? `${acc}.${String(part)}` : String(part);
  }, "");
}

export function describeIssue(issue: Issue, where: string): string {
  const field = fieldName(issue.path);
  if (issue.code === "unrecognized_keys" && issue.keys) {
    const names = issue.keys.map((k) => `"${field ? `${field}.` : ""}${k}"`).join(", ");
    return `Unknown field${issue.keys.length > 1 ? "s" : ""} ${names} in ${where}.`;
  }
  return `${field || where}: ${issue.message}`;
}

const TARGET_NAMES: Record<string, string> = { json: "request body", query: "query string", param: "path", header: "headers" };

/** Every route validates through this hook: the first problem, naming its field, as a 400. */
export const validationHook: Hook<unknown, AppEnv, string, unknown> = (result) => {
  if (result.success) return;
  const issues = (result.error as { issues: Issue[] }).issues;
  const where = TARGET_NAMES[result.target] ?? result.target;
  const message = issues.length > 0 ? describeIssue(issues[0]!, where) : `Invalid ${where}.`;
  throw new ApiError(400, "VALIDATION_ERROR", message);
};

/** A router whose routes validate with `validationHook`. */
export function newRouter() {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
}
