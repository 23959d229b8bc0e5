import type { Hook } from "@hono/zod-openapi";
import { OpenAPIHono } from "@hono/zod-openapi";
import type { AppEnv } from "../env";
import { ApiError, clip } from "./errors";

interface Issue {
  code: string;
  path: PropertyKey[];
  message: string;
  keys?: string[];
  /** invalid_union: each branch's issues. */
  errors?: Issue[][];
}

/** Unknown fields a message names (the rest are counted), and the longest name it quotes whole. */
const NAMED_UNKNOWN_FIELDS = 5;
const MAX_NAME_CHARS = 64;

/** `urls[3]`, `selectors.title`: the field a message is about, as a user would write it (names clipped). */
export function fieldName(path: PropertyKey[]): string {
  return path.reduce<string>((acc, part) => {
    if (typeof part === "number") return `${acc}[${part}]`;
    const name = clip(String(part), MAX_NAME_CHARS);
    return acc ? `${acc}.${name}` : name;
  }, "");
}

/** One issue as a sentence; a body's 150k unknown fields give five names and a count, not 150k names. */
export function describeIssue(issue: Issue, where: string): string {
  // A union (a URL, or an object with one): the branch of the value's own type says what is wrong in it.
  const branch = issue.errors?.find(
    (b) => b.length > 0 && !b.some((i) => i.path.length === 0 && i.code === "invalid_type"),
  );
  if (issue.code === "invalid_union" && branch) {
    return describeIssue({ ...branch[0]!, path: [...issue.path, ...branch[0]!.path] }, where);
  }
  const field = fieldName(issue.path);
  if (issue.code === "unrecognized_keys" && issue.keys) {
    const names = issue.keys
      .slice(0, NAMED_UNKNOWN_FIELDS)
      .map((k) => `"${field ? `${field}.` : ""}${clip(k, MAX_NAME_CHARS)}"`);
    const more = issue.keys.length - names.length;
    return `Unknown field${issue.keys.length > 1 ? "s" : ""} ${names.join(", ")}${more > 0 ? ` and ${more} more` : ""} in ${where}.`;
  }
  return `${field || where}: ${issue.message}`;
}

const TARGET_NAMES: Record<string, string> = {
  json: "request body",
  query: "query string",
  param: "path",
  header: "headers",
};

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
