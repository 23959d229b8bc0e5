import { describe, expect, it } from "vitest";
import { call, callJson } from "../helpers";

async function document(): Promise<any> {
  const r = await callJson("/openapi.json");
  expect(r.status).toBe(200);
  return r.body;
}

const publicOperations = [
  ["post", "/api/batch/scrape"],
  ["get", "/api/batch/scrape"],
  ["get", "/api/batch/scrape/{batchId}"],
  ["delete", "/api/batch/scrape/{batchId}"],
  ["post", "/api/batch/scrape/{batchId}/retry"],
  ["get", "/api/credits"],
  ["get", "/api/credits/ledger"],
  ["get", "/api/webhooks/deliveries"],
  ["get", "/api/webhooks/secret"],
  ["post", "/api/webhooks/secret/rotate"],
  ["post", "/api/batch/scrape/cancel-all"],
  ["get", "/api/batch/scrape/{batchId}/items/{itemId}/result"],
  ["get", "/api/batch/scrape/{batchId}/live"],
  ["get", "/api/batch/scrape/{batchId}/results"],
  ["get", "/api/batch/scrape/{batchId}/receipt"],
] as const;

const serpwowOperations = [
  ["get", "/live/batches/{batchId}/stop"],
  ["get", "/live/batches/stopall"],
  ["get", "/live/batches/{batchId}"],
  ["get", "/live/batches"],
] as const;

const adminOperations = [
  ["post", "/admin/accounts"],
  ["get", "/admin/accounts/{accountId}"],
  ["post", "/admin/accounts/{accountId}/credits"],
  ["post", "/admin/accounts/{accountId}/keys"],
  ["delete", "/admin/accounts/{accountId}/keys/{keyId}"],
  ["delete", "/admin/accounts/{accountId}"],
  ["get", "/admin/dead-letters"],
] as const;

describe("GET /openapi.json", () => {
  it("serves an OpenAPI 3.1 document as JSON, without credentials", async () => {
    const res = await call("/openapi.json");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type") ?? "").toMatch(/^application\/json/);
    const doc = await res.json<any>();
    expect(doc.openapi).toMatch(/^3\.1\.\d+$/);
    expect(doc.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    expect(doc.paths).toEqual(expect.any(Object));
  });

  it.each([...publicOperations, ...adminOperations, ...serpwowOperations])("documents %s %s", async (method, path) => {
    const doc = await document();
    expect(doc.paths[path]?.[method], `${method.toUpperCase()} ${path}`).toEqual(expect.any(Object));
    expect(doc.paths[path][method].responses).toEqual(expect.any(Object));
  });

  it.each(publicOperations)(
    "secures %s %s with the x-api-key or Bearer schemes and documents 401 and 403",
    async (method, path) => {
      const doc = await document();
      const op = doc.paths[path][method];
      expect(op.security).toEqual([{ ApiKeyAuth: [] }, { ApiKeyBearer: [] }]);
      expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(["401", "403"]));
    },
  );

  it.each(adminOperations)(
    "secures %s %s with the admin bearer scheme and documents 401 and 403",
    async (method, path) => {
      const doc = await document();
      const op = doc.paths[path][method];
      expect(op.security).toEqual([{ AdminToken: [] }]);
      expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(["401", "403"]));
    },
  );

  it("declares the security schemes", async () => {
    const doc = await document();
    expect(doc.components.securitySchemes).toEqual({
      ApiKeyAuth: { type: "apiKey", in: "header", name: "x-api-key" },
      ApiKeyBearer: { type: "http", scheme: "bearer", description: expect.stringMatching(/never the admin token/) },
      AdminToken: { type: "http", scheme: "bearer", description: expect.stringMatching(/never an API key/) },
      ApiKeyQuery: { type: "apiKey", in: "query", name: "api_key" },
    });
  });

  it("documents the create route's 202, its body and its error statuses", async () => {
    const doc = await document();
    const op = doc.paths["/api/batch/scrape"].post;
    expect(Object.keys(op.responses).sort()).toEqual(["202", "400", "401", "403", "413", "415", "422", "429", "503"]);
    expect(op.requestBody.required).toBe(true);
    expect(op.requestBody.content["application/json"].schema).toEqual(expect.any(Object));
    expect(op.parameters.map((p: { name: string; in: string }) => [p.in, p.name.toLowerCase()])).toContainEqual([
      "header",
      "idempotency-key",
    ]);
  });

  it("documents Spidra's shapes: 403 (not 402) for credits, item error a string, list outputFormat, usage-stats", async () => {
    const doc = await document();
    const statuses = (path: string, method: string) => Object.keys(doc.paths[path][method].responses);
    expect(statuses("/api/batch/scrape/{batchId}/retry", "post")).toContain("403");
    for (const [path, method] of Object.entries({
      "/api/batch/scrape": "post",
      "/api/batch/scrape/{batchId}/retry": "post",
    }))
      expect(statuses(path, method)).not.toContain("402");
    const item = doc.components.schemas.BatchItem;
    expect(item.properties.error.type).toEqual(expect.arrayContaining(["string"]));
    expect(item.properties).toHaveProperty("errorCode");
    expect(item.properties).toHaveProperty("jobId");
    expect(item.properties).toHaveProperty("screenshotUrl");
    const list = doc.paths["/api/batch/scrape"].get.responses["200"].content["application/json"].schema;
    expect(list.properties.jobs.items.properties).toHaveProperty("outputFormat");
    expect(list.properties.jobs.items.properties).toHaveProperty("scrapingChannel");
    const usage = doc.paths["/api/usage-stats"].get;
    expect(usage.parameters).toContainEqual(expect.objectContaining({ in: "query", name: "range", required: true }));
    expect(Object.keys(usage.responses)).toEqual(expect.arrayContaining(["200", "400", "401", "403"]));
  });

  it("documents path parameters for the routes that take ids", async () => {
    const doc = await document();
    const names = (path: string, method: string) =>
      (doc.paths[path][method].parameters ?? [])
        .filter((p: { in: string }) => p.in === "path")
        .map((p: { name: string }) => p.name)
        .sort();
    expect(names("/api/batch/scrape/{batchId}", "get")).toEqual(["batchId"]);
    expect(names("/api/batch/scrape/{batchId}/retry", "post")).toEqual(["batchId"]);
    expect(names("/admin/accounts/{accountId}/keys/{keyId}", "delete")).toEqual(["accountId", "keyId"]);
  });

  it("documents the paging query parameters", async () => {
    const doc = await document();
    const query = (path: string) =>
      doc.paths[path].get.parameters
        .filter((p: { in: string }) => p.in === "query")
        .map((p: { name: string }) => p.name)
        .sort();
    expect(query("/api/batch/scrape/{batchId}")).toEqual(["cursor", "limit"]);
    expect(query("/api/batch/scrape")).toEqual(["limit", "page"]);
    expect(query("/api/credits/ledger")).toEqual(["cursor", "limit"]);
  });

  it("describes errors with the one error envelope", async () => {
    const doc = await document();
    const schema = doc.components.schemas.Error;
    expect(schema.type).toBe("object");
    expect(Object.keys(schema.properties).sort()).toEqual(["code", "message", "requestId", "status"]);
    expect([...schema.required].sort()).toEqual(["code", "message", "requestId", "status"]);
  });

  it("lists no path outside the API, the SerpWow and Firecrawl surfaces, the admin API and the operations routes", async () => {
    const doc = await document();
    for (const path of Object.keys(doc.paths))
      expect(path).toMatch(
        /^\/(api|admin|live|v2)\/|^\/live\/batches$|^\/(healthz|docs|dashboard|)$|^\/docs\/(setup\.js|scalar\/[\d.]+\/standalone\.js)$/,
      );
  });

  it("describes every route the app serves (the document comes from the same code)", async () => {
    const doc = await document();
    const { createApp } = await import("../../src/http/app");
    const served = createApp()
      // Wildcard paths are middleware (e.g. the read limit on GET /api/*), not routes.
      .routes.filter((r) => r.method !== "ALL" && r.path !== "/openapi.json" && !r.path.includes("*"))
      .map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:([^/]+)/g, "{$1}")}`);
    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, ops]) =>
      Object.keys(ops).map((method) => `${method} ${path}`),
    );
    expect(served.length).toBeGreaterThan(15);
    expect(new Set(documented)).toEqual(new Set(served));
  });
});

describe("the results and receipt routes in the document", () => {
  it("describes the stream's two content types, its headers, its query and 410 for an expired batch", async () => {
    const doc = await document();
    const op = doc.paths["/api/batch/scrape/{batchId}/results"].get;
    expect(Object.keys(op.responses[200].content).sort()).toEqual(["application/x-ndjson", "text/csv"]);
    expect(op.responses[200].content["application/x-ndjson"].schema).toEqual({
      $ref: "#/components/schemas/ResultLine",
    });
    expect(Object.keys(op.responses[200].headers).sort()).toEqual(["x-batch-complete", "x-batch-status"]);
    expect(op.parameters.filter((p: { in: string }) => p.in === "query").map((p: { name: string }) => p.name)).toEqual([
      "format",
      "status",
    ]);
    expect(Object.keys(op.responses)).toEqual(expect.arrayContaining(["404", "410"]));
    const line = doc.components.schemas.ResultLine;
    expect(Object.keys(line.properties).sort()).toEqual(
      [
        "creditsUsed",
        "customId",
        "error",
        "errorCode",
        "index",
        "itemId",
        "metadata",
        "result",
        "status",
        "url",
      ].sort(),
    );
    // One name per concept: error and errorCode typed as on the batch read's items.
    const item = doc.components.schemas.BatchItem.properties;
    for (const name of ["error", "errorCode"]) {
      expect(line.properties[name].type, name).toEqual(item[name].type);
      expect(line.properties[name].type, name).toEqual(["string", "null"]);
    }
    const receipt = doc.paths["/api/batch/scrape/{batchId}/receipt"].get;
    expect(receipt.responses[200].content["application/json"].schema).toEqual({ $ref: "#/components/schemas/Receipt" });
    expect(doc.components.schemas.LabelledUrl.properties).toHaveProperty("customId");
  });
});

describe("GET /docs", () => {
  it("renders the API reference from /openapi.json", async () => {
    const res = await call("/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type") ?? "").toMatch(/^text\/html/);
    const html = await res.text();
    expect(html).toContain("/openapi.json");
    expect(html).toContain("Batch scrape API");
  });
});
