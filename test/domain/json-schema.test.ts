/** The JSON Schema subset of AI extraction (src/domain/json-schema.ts): what is accepted, and what fits. */
import { describe, expect, it } from "vitest";
import { schemaProblem, validateJson } from "../../src/domain/json-schema";

describe("schemaProblem", () => {
  it("accepts the documented subset, annotations included", () => {
    expect(
      schemaProblem({
        $schema: "https://json-schema.org/draft/2020-12/schema",
        title: "Job",
        type: "object",
        required: ["title"],
        additionalProperties: false,
        properties: {
          title: { type: "string", minLength: 1, maxLength: 200, description: "The job title" },
          remote: { type: ["boolean", "null"] },
          salary: { type: "number", minimum: 0, maximum: 1e7 },
          level: { enum: ["junior", "senior"] },
          kind: { const: "job" },
          posted: { type: "string", format: "date" },
          tags: { type: "array", items: { type: "string" }, minItems: 0, maxItems: 20 },
          where: { anyOf: [{ type: "string" }, { type: "null" }] },
        },
      }),
    ).toBeNull();
  });

  it.each([
    [
      { type: "object", properties: { a: { type: "string", pattern: "(a+)+$" } } },
      "properties.a.pattern: keyword not supported",
    ],
    [{ type: "object", oneOf: [] }, "oneOf: keyword not supported"],
    [{ type: "object", $defs: {} }, "$defs: keyword not supported"],
    [{ type: "object", additionalProperties: { type: "string" } }, "additionalProperties: only true or false"],
    [{ type: "object", properties: { a: { type: "list" } } }, "properties.a.type: must be one of"],
    [{ type: "object", properties: { a: { type: [] } } }, "properties.a.type: must be one of"],
    [{ type: "object", required: "a" }, "required: must be a list"],
    [{ type: "object", properties: { a: { maxItems: -1 } } }, "properties.a.maxItems: must be a whole number"],
    [{ type: "object", properties: { a: { enum: [] } } }, "properties.a.enum: must be a non-empty list"],
    [{ type: "object", properties: { a: "string" } }, "properties.a: a schema must be an object"],
    [{ type: "string" }, 'the top level must have type "object"'],
    [[], "must be a JSON Schema object"],
  ])("refuses %j: %s", (schema, problem) => {
    expect(schemaProblem(schema)).toContain(problem);
  });

  it("refuses nesting deeper than 10 and more than 500 schemas", () => {
    let deep: Record<string, unknown> = { type: "string" };
    for (let i = 0; i < 12; i++) deep = { type: "object", properties: { x: deep } };
    expect(schemaProblem(deep)).toContain("nested deeper than 10");
    const wide = {
      type: "object",
      properties: Object.fromEntries(Array.from({ length: 600 }, (_, i) => [`p${i}`, {}])),
    };
    expect(schemaProblem(wide)).toContain("more than 500 schemas");
  });
});

describe("validateJson", () => {
  const schema = {
    type: "object",
    required: ["name", "price"],
    additionalProperties: false,
    properties: {
      name: { type: "string", minLength: 2, maxLength: 5 },
      price: { type: ["number", "null"], minimum: 0, maximum: 100 },
      qty: { type: "integer" },
      tags: { type: "array", items: { type: "string" }, maxItems: 2 },
      state: { enum: ["new", "used"] },
      kind: { const: { a: [1] } },
      alt: { anyOf: [{ type: "string" }, { type: "integer", minimum: 10 }] },
    },
  };

  it("passes a value that fits", () => {
    expect(
      validateJson(schema, { name: "ab", price: null, qty: 3, tags: ["x"], state: "new", kind: { a: [1] }, alt: 12 }),
    ).toEqual([]);
    expect(validateJson(schema, { name: "abcde", price: 7.5 })).toEqual([]);
  });

  it.each([
    [{ name: "ab" }, '$: missing required property "price"'],
    [{ name: "a", price: 1 }, "$.name: shorter than 2"],
    [{ name: "abcdef", price: 1 }, "$.name: longer than 5"],
    [{ name: "ab", price: -1 }, "$.price: below 0"],
    [{ name: "ab", price: 101 }, "$.price: above 100"],
    [{ name: "ab", price: "1" }, "$.price: expected number or null, got string"],
    [{ name: "ab", price: 1, qty: 1.5 }, "$.qty: expected integer, got number"],
    [{ name: "ab", price: 1, tags: ["a", 2] }, "$.tags[1]: expected string, got integer"],
    [{ name: "ab", price: 1, tags: ["a", "b", "c"] }, "$.tags: more than 2 items"],
    [{ name: "ab", price: 1, state: "broken" }, "$.state: is not one of the allowed values"],
    [{ name: "ab", price: 1, kind: { a: [2] } }, "$.kind: is not the required constant"],
    [{ name: "ab", price: 1, alt: 3 }, "$.alt: fits none of anyOf"],
    [{ name: "ab", price: 1, other: 1 }, '$: property "other" is not allowed'],
    [null, "$: expected object, got null"],
  ])("reports %j: %s", (value, problem) => {
    expect(validateJson(schema, value)).toContain(problem);
  });

  it("reports at most five problems", () => {
    const many = { type: "object", properties: { a: { type: "array", items: { type: "string" } } } };
    expect(validateJson(many, { a: Array.from({ length: 50 }, () => 1) })).toHaveLength(5);
  });

  it("a property named __proto__ or constructor is an ordinary property", () => {
    const s = { type: "object", additionalProperties: false, properties: { a: { type: "string" } } };
    expect(validateJson(s, JSON.parse('{"__proto__": 1}'))).toEqual(['$: property "__proto__" is not allowed']);
    expect(validateJson(s, { constructor: 1 })).toEqual(['$: property "constructor" is not allowed']);
  });
});
