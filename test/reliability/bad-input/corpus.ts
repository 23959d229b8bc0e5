/**
 * Hand-written bad inputs, each with the exact 4xx and code the API documents for it.
 * `path` and `headers` get the fixture (a funded account's key, a batch, a completed item).
 */
import { adminHeaders, keyHeaders } from "../../helpers";

export interface Fixture {
  accountId: string;
  apiKey: string;
  keyId: string;
  batchId: string;
  itemId: string;
}

export interface BadInput {
  name: string;
  method: string;
  path: (f: Fixture) => string;
  headers?: (f: Fixture) => Record<string, string>;
  body?: string;
  expect: [status: number, code: string];
}

const CREATE = "/api/batch/scrape";
const url = "https://example.com/";
const api = (f: Fixture) => keyHeaders(f.apiKey);
const admin = () => adminHeaders;

/** A create request with a body, sent with a valid key. */
function create(name: string, body: string, expected: BadInput["expect"]): BadInput {
  return { name: `create: ${name}`, method: "POST", path: () => CREATE, headers: api, body, expect: expected };
}

const invalidJson = (name: string, body: string) => create(name, body, [400, "INVALID_JSON"]);
const invalid = (name: string, value: unknown) => create(name, JSON.stringify(value), [400, "VALIDATION_ERROR"]);

const ODD_IDS: [string, string][] = [
  // Raw "../" segments never reach the API: the URL is normalised first, to another route.
  ["path traversal with encoded slashes", "..%2F..%2Fadmin"],
  ["fully encoded path traversal", "%2e%2e%2f%2e%2e%2fadmin%2faccounts"],
  ["double-encoded traversal", "%252e%252e%252fadmin"],
  ["SQL", encodeURIComponent("' OR 1=1 --")],
  ["SQL union", encodeURIComponent("x' UNION SELECT key_hash FROM api_keys --")],
  ["10k characters", "a".repeat(10_000)],
  ["100k characters", "b".repeat(100_000)],
  ["an encoded NUL", "%00"],
  ["malformed percent-encoding", "%ZZ"],
  ["truncated UTF-8", "%E0%A4%A"],
  ["unicode", encodeURIComponent("批次-🚀")],
  ["an uppercase UUID that does not exist", "AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE"],
  ["a UUID with braces", encodeURIComponent("{00000000-0000-4000-8000-000000000000}")],
  ["a UUID with a NUL after it", "00000000-0000-4000-8000-000000000000%00"],
  ["a JSON object", encodeURIComponent('{"$ne":null}')],
];

export const CORPUS: BadInput[] = [
  // ---- malformed and truncated JSON
  invalidJson("empty body", ""),
  invalidJson("lone brace", "{"),
  invalidJson("unclosed array", '{"urls": [}'),
  invalidJson("unclosed object", `{"urls": ["${url}"]`),
  invalidJson("trailing comma", `{"urls": ["${url}"],}`),
  invalidJson("single quotes", `{'urls': ['${url}']}`),
  invalidJson("unquoted key", `{urls: ["${url}"]}`),
  invalidJson("NaN", `{"urls": ["${url}"], "maxConcurrency": NaN}`),
  invalidJson("Infinity", `{"urls": ["${url}"], "maxConcurrency": Infinity}`),
  invalidJson("a comment", `{"urls": ["${url}"] /* hi */}`),
  invalidJson("two documents", `{"urls": ["${url}"]}{"urls": []}`),
  invalidJson("a raw NUL between tokens", `{"urls":\u0000["${url}"]}`),
  invalidJson("a raw control character in a string", `{"urls": ["${url}\u0001"]}`),
  invalidJson("a bad escape", `{"urls": ["\\x41"]}`),
  invalidJson("form encoding", `urls=${encodeURIComponent(url)}`),
  invalidJson("XML", `<urls><url>${url}</url></urls>`),
  // ---- wrong types and shapes
  invalid("null", null),
  invalid("an array", [url]),
  invalid("a string", url),
  invalid("a number", 42),
  invalid("no urls", {}),
  invalid("urls as a string", { urls: url }),
  invalid("urls as an object", { urls: { 0: url } }),
  invalid("empty urls", { urls: [] }),
  invalid("a number in urls", { urls: [1] }),
  invalid("null in urls", { urls: [null] }),
  invalid("an array in urls", { urls: [[url]] }),
  invalid("a relative URL", { urls: ["/page"] }),
  invalid("a javascript: URL", { urls: ["javascript:alert(1)"] }),
  invalid("a file: URL", { urls: ["file:///etc/passwd"] }),
  invalid("a URL with credentials", { urls: ["https://user:pass@example.com/"] }),
  invalid("a NUL in the host", { urls: ["https://exa\u0000mple.com/"] }),
  invalid("a broken IPv6 host", { urls: ["https://[::1/"] }),
  invalid("an unknown output", { urls: [url], output: "pdf" }),
  invalid("output as a number", { urls: [url], output: 1 }),
  invalid("output with a NUL", { urls: [url], output: "json\u0000" }),
  invalid("selectors as an array", { urls: [url], selectors: ["h1"] }),
  invalid("a selector as a number", { urls: [url], selectors: { title: 1 } }),
  invalid("an empty selector", { urls: [url], selectors: { title: "" } }),
  invalid("an unsupported selector", { urls: [url], selectors: { title: "h1 + p" } }),
  invalid("a selector name with a NUL", { urls: [url], selectors: { "ti\u0000tle": "h1" } }),
  invalid("an emoji selector name", { urls: [url], selectors: { "🚀": "h1" } }),
  invalid("21 selectors", {
    urls: [url],
    selectors: Object.fromEntries(Array.from({ length: 21 }, (_, k) => [`s${k}`, "h1"])),
  }),
  invalid("maxConcurrency 0", { urls: [url], maxConcurrency: 0 }),
  invalid("maxConcurrency 21", { urls: [url], maxConcurrency: 21 }),
  invalid("maxConcurrency -1", { urls: [url], maxConcurrency: -1 }),
  invalid("maxConcurrency 1.5", { urls: [url], maxConcurrency: 1.5 }),
  invalid("maxConcurrency as a string", { urls: [url], maxConcurrency: "5" }),
  invalid("maxConcurrency 1e308", { urls: [url], maxConcurrency: 1e308 }),
  invalid("an unknown field", { urls: [url], priority: "high" }),
  create("a __proto__ field", `{"urls": ["${url}"], "__proto__": {"admin": true}}`, [400, "VALIDATION_ERROR"]),
  create("a constructor field", `{"urls": ["${url}"], "constructor": {"prototype": {"admin": true}}}`, [
    400,
    "VALIDATION_ERROR",
  ]),
  // ---- huge and deep
  invalid("1001 URLs", { urls: Array.from({ length: 1001 }, (_, k) => `${url}${k}`) }),
  invalid("a 10k-character URL", { urls: [`${url}${"a".repeat(10_000)}`] }),
  create("100k nested arrays in urls", `{"urls": ${"[".repeat(100_000)}${"]".repeat(100_000)}}`, [
    400,
    "VALIDATION_ERROR",
  ]),
  create(
    "100k nested objects in selectors",
    `{"urls": ["${url}"], "selectors": ${'{"a":'.repeat(100_000)}1${"}".repeat(100_000)}}`,
    [400, "VALIDATION_ERROR"],
  ),
  create(
    "500k nested arrays in an unknown field",
    `{"urls": ["${url}"], "x": ${"[".repeat(500_000)}${"]".repeat(500_000)}}`,
    [400, "VALIDATION_ERROR"],
  ),
  create("100k unclosed brackets", `{"urls": ${"[".repeat(100_000)}`, [400, "INVALID_JSON"]),
  create("a body over 3 MiB", JSON.stringify({ urls: [`${url}${"a".repeat(3 * 1024 * 1024)}`] }), [
    413,
    "PAYLOAD_TOO_LARGE",
  ]),
  // ---- headers
  {
    name: "create: text/plain",
    method: "POST",
    path: () => CREATE,
    headers: (f) => ({ "x-api-key": f.apiKey, "content-type": "text/plain" }),
    body: `{"urls":["${url}"]}`,
    expect: [415, "UNSUPPORTED_MEDIA_TYPE"],
  },
  {
    name: "create: no content type",
    method: "POST",
    path: () => CREATE,
    headers: (f) => ({ "x-api-key": f.apiKey }),
    body: `{"urls":["${url}"]}`,
    expect: [415, "UNSUPPORTED_MEDIA_TYPE"],
  },
  {
    name: "create: application/jsonx",
    method: "POST",
    path: () => CREATE,
    headers: (f) => keyHeaders(f.apiKey, { "content-type": "application/jsonx" }),
    body: `{"urls":["${url}"]}`,
    expect: [415, "UNSUPPORTED_MEDIA_TYPE"],
  },
  {
    name: "create: a 256-character Idempotency-Key",
    method: "POST",
    path: () => CREATE,
    headers: (f) => keyHeaders(f.apiKey, { "idempotency-key": "k".repeat(256) }),
    body: `{"urls":["${url}"]}`,
    expect: [400, "VALIDATION_ERROR"],
  },
  {
    name: "create: an Idempotency-Key with a space",
    method: "POST",
    path: () => CREATE,
    headers: (f) => keyHeaders(f.apiKey, { "idempotency-key": "a b" }),
    body: `{"urls":["${url}"]}`,
    expect: [400, "VALIDATION_ERROR"],
  },
  {
    name: "create: a Latin-1 Idempotency-Key",
    method: "POST",
    path: () => CREATE,
    headers: (f) => keyHeaders(f.apiKey, { "idempotency-key": "caf\u00e9" }),
    body: `{"urls":["${url}"]}`,
    expect: [400, "VALIDATION_ERROR"],
  },
  {
    name: "a 10k-character API key",
    method: "GET",
    path: () => "/api/credits",
    headers: () => ({ "x-api-key": `bsk_${"a".repeat(10_000)}` }),
    expect: [403, "INVALID_API_KEY"],
  },
  {
    name: "two API keys in one header",
    method: "GET",
    path: () => "/api/credits",
    headers: (f) => ({ "x-api-key": `${f.apiKey}, ${f.apiKey}` }),
    expect: [403, "INVALID_API_KEY"],
  },
  {
    name: "an API key with SQL",
    method: "GET",
    path: () => "/api/credits",
    headers: () => ({ "x-api-key": "' OR 1=1 --" }),
    expect: [403, "INVALID_API_KEY"],
  },
  {
    name: "a 10k-character admin token",
    method: "GET",
    path: (f) => `/admin/accounts/${f.accountId}`,
    headers: () => ({ authorization: `Bearer ${"t".repeat(10_000)}` }),
    expect: [401, "UNAUTHORIZED"],
  },
  // ---- query strings
  ...[
    ["limit=0", "VALIDATION_ERROR"],
    ["limit=-1", "VALIDATION_ERROR"],
    ["limit=101", "VALIDATION_ERROR"],
    ["limit=1.5", "VALIDATION_ERROR"],
    ["limit=abc", "VALIDATION_ERROR"],
    ["limit=%00", "VALIDATION_ERROR"],
    ["limit=1&limit=2", "VALIDATION_ERROR"],
    ["cursor=-1", "VALIDATION_ERROR"],
    ["cursor=abc", "VALIDATION_ERROR"],
    ["cursor=1e5", "VALIDATION_ERROR"],
    [`cursor=${"9".repeat(16)}`, "VALIDATION_ERROR"],
    [`cursor=${encodeURIComponent("' OR 1=1 --")}`, "VALIDATION_ERROR"],
  ].flatMap(([query, code]): BadInput[] => [
    {
      name: `ledger ?${query}`,
      method: "GET",
      path: () => `/api/credits/ledger?${query}`,
      headers: api,
      expect: [400, code!],
    },
    {
      name: `batch ?${query}`,
      method: "GET",
      path: (f) => `/api/batch/scrape/${f.batchId}?${query}`,
      headers: api,
      expect: [400, code!],
    },
  ]),
  {
    name: "list ?page=0",
    method: "GET",
    path: () => "/api/batch/scrape?page=0",
    headers: api,
    expect: [400, "VALIDATION_ERROR"],
  },
  {
    name: "list ?page=1e12",
    method: "GET",
    path: () => "/api/batch/scrape?page=1000000000000",
    headers: api,
    expect: [400, "VALIDATION_ERROR"],
  },
  {
    name: "list ?limit=51",
    method: "GET",
    path: () => "/api/batch/scrape?limit=51",
    headers: api,
    expect: [400, "VALIDATION_ERROR"],
  },
  {
    name: "dead letters ?cursor of 1025 characters",
    method: "GET",
    path: () => `/admin/dead-letters?cursor=${"c".repeat(1025)}`,
    headers: admin,
    expect: [400, "VALIDATION_ERROR"],
  },
  // ---- odd ids on every route that takes one
  ...ODD_IDS.flatMap(([label, id]): BadInput[] => [
    {
      name: `GET batch with ${label}`,
      method: "GET",
      path: () => `/api/batch/scrape/${id}`,
      headers: api,
      expect: [404, "NOT_FOUND"],
    },
    {
      name: `DELETE batch with ${label}`,
      method: "DELETE",
      path: () => `/api/batch/scrape/${id}`,
      headers: api,
      expect: [404, "NOT_FOUND"],
    },
    {
      name: `retry batch with ${label}`,
      method: "POST",
      path: () => `/api/batch/scrape/${id}/retry`,
      headers: api,
      expect: [404, "NOT_FOUND"],
    },
    {
      name: `result with ${label} as batch id`,
      method: "GET",
      path: (f) => `/api/batch/scrape/${id}/items/${f.itemId}/result`,
      headers: api,
      expect: [404, "NOT_FOUND"],
    },
    {
      name: `result with ${label} as item id`,
      method: "GET",
      path: (f) => `/api/batch/scrape/${f.batchId}/items/${id}/result`,
      headers: api,
      expect: [404, "NOT_FOUND"],
    },
    {
      name: `admin account with ${label}`,
      method: "GET",
      path: () => `/admin/accounts/${id}`,
      headers: admin,
      expect: [404, "NOT_FOUND"],
    },
    {
      name: `admin grant with ${label}`,
      method: "POST",
      path: () => `/admin/accounts/${id}/credits`,
      headers: admin,
      body: '{"amount":1}',
      expect: [404, "NOT_FOUND"],
    },
    {
      name: `admin new key with ${label}`,
      method: "POST",
      path: () => `/admin/accounts/${id}/keys`,
      headers: admin,
      body: "{}",
      expect: [404, "NOT_FOUND"],
    },
    {
      name: `admin revoke with ${label} as account`,
      method: "DELETE",
      path: (f) => `/admin/accounts/${id}/keys/${f.keyId}`,
      headers: admin,
      expect: [404, "NOT_FOUND"],
    },
    {
      name: `admin revoke with ${label} as key`,
      method: "DELETE",
      path: (f) => `/admin/accounts/${f.accountId}/keys/${id}`,
      headers: admin,
      expect: [404, "NOT_FOUND"],
    },
  ]),
  // ---- admin bodies
  ...[
    ["amount 0", { amount: 0 }],
    ["amount -1", { amount: -1 }],
    ["amount 1.5", { amount: 1.5 }],
    ["amount as a string", { amount: "10" }],
    ["amount 1e12", { amount: 1e12 }],
    ["amount null", { amount: null }],
    ["no amount", {}],
    ["an unknown field", { amount: 1, to: "someone else" }],
  ].map(
    ([label, body]): BadInput => ({
      name: `admin grant: ${String(label)}`,
      method: "POST",
      path: (f) => `/admin/accounts/${f.accountId}/credits`,
      headers: admin,
      body: JSON.stringify(body),
      expect: [400, "VALIDATION_ERROR"],
    }),
  ),
  ...[
    ["credits -1", { credits: -1 }],
    ["credits 1.5", { credits: 1.5 }],
    ["an empty name", { name: "" }],
    ["a 201-character name", { name: "n".repeat(201) }],
    ["name as an object", { name: { first: "x" } }],
    ["an unknown field", { admin: true }],
    ["null", null],
  ].map(
    ([label, body]): BadInput => ({
      name: `admin account: ${String(label)}`,
      method: "POST",
      path: () => "/admin/accounts",
      headers: admin,
      body: JSON.stringify(body),
      expect: [400, "VALIDATION_ERROR"],
    }),
  ),
  ...[
    ["expiresAt in the past", { expiresAt: "2000-01-01T00:00:00Z" }],
    ["expiresAt not a date", { expiresAt: "tomorrow" }],
    ["expiresAt as a number", { expiresAt: 1e15 }],
  ].map(
    ([label, body]): BadInput => ({
      name: `admin key: ${String(label)}`,
      method: "POST",
      path: (f) => `/admin/accounts/${f.accountId}/keys`,
      headers: admin,
      body: JSON.stringify(body),
      expect: [400, "VALIDATION_ERROR"],
    }),
  ),
  {
    name: "admin grant: truncated JSON",
    method: "POST",
    path: (f) => `/admin/accounts/${f.accountId}/credits`,
    headers: admin,
    body: '{"amount":',
    expect: [400, "INVALID_JSON"],
  },
  // ---- routes and methods
  {
    name: "PUT on a batch",
    method: "PUT",
    path: (f) => `/api/batch/scrape/${f.batchId}`,
    headers: api,
    body: "{}",
    expect: [405, "METHOD_NOT_ALLOWED"],
  },
  {
    name: "an unknown route under /api",
    method: "GET",
    path: () => "/api/batch/scrape/x/y/z/w",
    headers: api,
    expect: [404, "NOT_FOUND"],
  },
];
