/**
 * The JSON Schema subset that AI extraction accepts (docs/ai-extraction.md): checked when a
 * batch is created (anything outside it is refused, naming the keyword), and used to check
 * the model's answer. Small on purpose: every keyword here is enforced, none is half-done.
 *
 * Enforced: type (one or a list of object, array, string, number, integer, boolean, null),
 * properties, required, additionalProperties (true/false), items (one schema), minItems,
 * maxItems, enum, const, minLength, maxLength, minimum, maximum, anyOf.
 * Annotations (accepted, passed to the model, not checked): title, description, format,
 * examples, default, $schema. Refused: everything else ($ref, pattern, oneOf, allOf, not, ...).
 * `pattern` is refused rather than run: a caller's regular expression could backtrack for ever.
 */

export type JsonSchema = { [keyword: string]: unknown };

export const SCHEMA_LIMITS = {
  /** Bytes of the schema as JSON. */
  maxBytes: 16 * 1024,
  /** Nesting of schemas inside schemas. */
  maxDepth: 10,
  /** Schemas in all (the root, each property, each items, each anyOf branch). */
  maxNodes: 500,
} as const;

const TYPES = new Set(["object", "array", "string", "number", "integer", "boolean", "null"]);
const ANNOTATIONS = new Set(["title", "description", "format", "examples", "default", "$schema"]);
const KEYWORDS = new Set([
  "type",
  "properties",
  "required",
  "additionalProperties",
  "items",
  "minItems",
  "maxItems",
  "enum",
  "const",
  "minLength",
  "maxLength",
  "minimum",
  "maximum",
  "anyOf",
  ...ANNOTATIONS,
]);
/** Problems one check reports at most. */
const MAX_PROBLEMS = 5;

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): boolean {
  return typeof value === "number" && Number.isInteger(value) && value >= 0;
}

/**
 * Why `schema` is outside the accepted subset (a path such as `properties.price.pattern`
 * and what is wrong there), or null when it is inside.
 */
export function schemaProblem(schema: unknown): string | null {
  let json: string;
  try {
    json = JSON.stringify(schema);
  } catch {
    return "is not JSON";
  }
  if (new TextEncoder().encode(json).length > SCHEMA_LIMITS.maxBytes)
    return `is over ${SCHEMA_LIMITS.maxBytes} bytes as JSON`;
  if (!isObject(schema)) return "must be a JSON Schema object";
  if (schema.type !== "object" && !(Array.isArray(schema.type) && schema.type.includes("object")))
    return 'the top level must have type "object"';
  const nodes = { count: 0 };
  return checkNode(schema, "", 0, nodes);
}

function at(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

function checkNode(node: unknown, path: string, depth: number, nodes: { count: number }): string | null {
  const where = path || "the top level";
  if (!isObject(node)) return `${where}: a schema must be an object`;
  if (++nodes.count > SCHEMA_LIMITS.maxNodes) return `has more than ${SCHEMA_LIMITS.maxNodes} schemas`;
  if (depth > SCHEMA_LIMITS.maxDepth) return `${where}: nested deeper than ${SCHEMA_LIMITS.maxDepth}`;
  for (const key of Object.keys(node)) {
    if (!KEYWORDS.has(key))
      return `${at(path, key)}: keyword not supported (docs/ai-extraction.md lists those that are)`;
  }
  const { type } = node;
  if (type !== undefined) {
    const types = Array.isArray(type) ? type : [type];
    if (types.length === 0 || !types.every((t) => typeof t === "string" && TYPES.has(t)))
      return `${at(path, "type")}: must be one of ${[...TYPES].join(", ")} (or a list of them)`;
  }
  if (node.properties !== undefined) {
    if (!isObject(node.properties)) return `${at(path, "properties")}: must be an object`;
    for (const [name, sub] of Object.entries(node.properties)) {
      const problem = checkNode(sub, at(at(path, "properties"), name), depth + 1, nodes);
      if (problem) return problem;
    }
  }
  if (
    node.required !== undefined &&
    !(Array.isArray(node.required) && node.required.every((r) => typeof r === "string"))
  )
    return `${at(path, "required")}: must be a list of property names`;
  if (node.additionalProperties !== undefined && typeof node.additionalProperties !== "boolean")
    return `${at(path, "additionalProperties")}: only true or false is supported`;
  if (node.items !== undefined) {
    const problem = checkNode(node.items, at(path, "items"), depth + 1, nodes);
    if (problem) return problem;
  }
  if (node.anyOf !== undefined) {
    if (!Array.isArray(node.anyOf) || node.anyOf.length === 0) return `${at(path, "anyOf")}: must be a non-empty list`;
    for (const [i, sub] of node.anyOf.entries()) {
      const problem = checkNode(sub, `${at(path, "anyOf")}[${i}]`, depth + 1, nodes);
      if (problem) return problem;
    }
  }
  for (const key of ["minItems", "maxItems", "minLength", "maxLength"]) {
    if (node[key] !== undefined && !isCount(node[key])) return `${at(path, key)}: must be a whole number >= 0`;
  }
  for (const key of ["minimum", "maximum"]) {
    if (node[key] !== undefined && typeof node[key] !== "number") return `${at(path, key)}: must be a number`;
  }
  if (node.enum !== undefined && (!Array.isArray(node.enum) || node.enum.length === 0))
    return `${at(path, "enum")}: must be a non-empty list`;
  return null;
}

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

function fitsType(value: unknown, type: string): boolean {
  const actual = typeOf(value);
  return actual === type || (type === "number" && actual === "integer");
}

/** Deep equality of JSON values, for enum and const. */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ak = Object.keys(a);
  const bk = Object.keys(b);
  return (
    ak.length === bk.length &&
    ak.every((k) => sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
  );
}

/**
 * Where `value` does not fit `schema` (a schema `schemaProblem` accepted): up to five
 * problems, each `path: what`, with `$` for the value itself. Empty when it fits.
 */
export function validateJson(schema: JsonSchema, value: unknown): string[] {
  const problems: string[] = [];
  check(schema, value, "$", problems);
  return problems.slice(0, MAX_PROBLEMS);
}

function check(schema: JsonSchema, value: unknown, path: string, problems: string[]): void {
  if (problems.length >= MAX_PROBLEMS) return;
  const report = (what: string) => problems.push(`${path}: ${what}`);
  if (schema.type !== undefined) {
    const types = (Array.isArray(schema.type) ? schema.type : [schema.type]) as string[];
    if (!types.some((t) => fitsType(value, t)))
      return void report(`expected ${types.join(" or ")}, got ${typeOf(value)}`);
  }
  if (schema.const !== undefined && !sameJson(schema.const, value)) report("is not the required constant");
  if (Array.isArray(schema.enum) && !schema.enum.some((option) => sameJson(option, value)))
    report("is not one of the allowed values");
  if (Array.isArray(schema.anyOf)) {
    const fits = (schema.anyOf as JsonSchema[]).some((sub) => validateJson(sub, value).length === 0);
    if (!fits) report("fits none of anyOf");
  }
  if (typeof value === "string") {
    const length = [...value].length;
    if (typeof schema.minLength === "number" && length < schema.minLength) report(`shorter than ${schema.minLength}`);
    if (typeof schema.maxLength === "number" && length > schema.maxLength) report(`longer than ${schema.maxLength}`);
  }
  if (typeof value === "number") {
    if (typeof schema.minimum === "number" && value < schema.minimum) report(`below ${schema.minimum}`);
    if (typeof schema.maximum === "number" && value > schema.maximum) report(`above ${schema.maximum}`);
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === "number" && value.length < schema.minItems)
      report(`fewer than ${schema.minItems} items`);
    if (typeof schema.maxItems === "number" && value.length > schema.maxItems)
      report(`more than ${schema.maxItems} items`);
    if (isObject(schema.items))
      for (const [i, item] of value.entries()) check(schema.items as JsonSchema, item, `${path}[${i}]`, problems);
  }
  if (isObject(value)) {
    const properties = isObject(schema.properties) ? schema.properties : {};
    for (const name of Array.isArray(schema.required) ? (schema.required as string[]) : []) {
      if (!Object.hasOwn(value, name)) report(`missing required property ${JSON.stringify(name)}`);
    }
    for (const [name, sub] of Object.entries(value)) {
      const subSchema = Object.hasOwn(properties, name) ? properties[name] : undefined;
      if (isObject(subSchema)) check(subSchema, sub, `${path}.${name}`, problems);
      else if (schema.additionalProperties === false) report(`property ${JSON.stringify(name)} is not allowed`);
    }
  }
}
