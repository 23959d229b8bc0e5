// The layer checker must catch what it is there to catch: run by `npm run lint` before the
// checker itself, with in-memory files (node --test; vitest runs in workerd, which has no fs).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { violations } from "./check-layers.mjs";

/** The forbidden imports of one in-memory file. */
const check = (path, text) => violations([{ path, text }]);

describe("check-layers", () => {
  it("reports a value import that runs the wrong way", () => {
    const found = check("src/account/x.ts", 'import { y } from "../batch/y";\n');
    assert.equal(found.length, 1);
    assert.match(found[0], /^src\/account\/x\.ts imports src\/batch\/y: the account never/);
  });

  it("reports a type-only import", () => {
    assert.equal(check("src/executor/x.ts", 'import type { StartResult } from "../batch/batch-object";\n').length, 1);
    assert.equal(check("src/executor/x.ts", 'import { type StartResult } from "../batch/batch-object";\n').length, 1);
  });

  it("reports a multi-line import, comments among its names too", () => {
    const text = 'import {\n  a,\n  // the batch\'s own\n  type B,\n  /* "c" */ c,\n} from "../executor/run-item";\n';
    assert.deepEqual(check("src/batch/x.ts", text), [
      "src/batch/x.ts imports src/executor/run-item: the batch object never reaches into the executor, the account object or the routes",
    ]);
  });

  it("reports re-exports, bare imports and import() types", () => {
    assert.equal(check("src/domain/x.ts", 'export { a } from "../webhooks/events";\n').length, 1);
    assert.equal(check("src/domain/x.ts", 'export type * from "../http/app";\n').length, 1);
    assert.equal(check("src/webhooks/x.ts", 'import "../account/setup";\n').length, 1);
    assert.equal(check("src/domain/x.ts", 'type M = import("../executor/message").ScrapeMessage;\n').length, 1);
  });

  it("reports the routes reaching into the executor", () => {
    assert.deepEqual(check("src/http/routes/x.ts", 'import { extractJson } from "../../executor/extract-json";\n'), [
      "src/http/routes/x.ts imports src/executor/extract-json: the routes reach the executor only through the batch object",
    ]);
    assert.equal(check("src/http/x.ts", 'import type { ScrapeMessage } from "../executor/message";\n').length, 1);
  });

  it("reports the registry reaching into another object, the executor or the routes", () => {
    assert.deepEqual(check("src/registry/x.ts", 'import { cancelBatches } from "../account/cancel-all";\n'), [
      "src/registry/x.ts imports src/account/cancel-all: the registry lists account ids; it calls no other part",
    ]);
    for (const part of ["batch/batch-object", "executor/consumer", "http/objects", "webhooks/deliveries"]) {
      assert.equal(check("src/registry/x.ts", `import type { X } from "../${part}";\n`).length, 1, part);
    }
    assert.deepEqual(
      check("src/registry/x.ts", 'import { migrate } from "../durable/sql";\nimport type { Env } from "../env";\n'),
      [],
    );
  });

  it("lets the client import only types, and only those of the routes", () => {
    // Types of the routes: erased, nothing of the server runs in the client.
    const types = [
      'import type { z } from "@hono/zod-openapi";',
      'import type { batchRoutes } from "../http/routes/batches";',
      'export type { CreateBatchInput } from "../http/routes/batches";',
    ].join("\n");
    assert.deepEqual(check("src/client/index.ts", types), []);
    // A value import of the routes would bring the server (Hono, the objects' stubs) into it.
    assert.deepEqual(check("src/client/index.ts", 'import { batchRoutes } from "../http/routes/batches";\n'), [
      "src/client/index.ts imports ../http/routes/batches at runtime: the client runs outside the Worker: types only",
    ]);
    // An inline `type` may leave the import behind (verbatimModuleSyntax keeps it): `import type` is sure.
    assert.equal(
      check("src/client/index.ts", 'import { type batchRoutes } from "../http/routes/batches";\n').length,
      1,
    );
    assert.equal(check("src/client/index.ts", 'import { z } from "@hono/zod-openapi";\n').length, 1);
    assert.equal(check("src/client/index.ts", 'import "../http/app";\n').length, 2);
    // Types from anywhere else of the server: the client knows it by its routes only.
    assert.deepEqual(check("src/client/index.ts", 'import type { Env } from "../env";\n'), [
      "src/client/index.ts imports src/env: the client knows the server by its routes' schemas only",
    ]);
    assert.equal(check("src/client/index.ts", 'import type { BatchRow } from "../batch/rows";\n').length, 1);
  });

  it("reports a platform module in the domain", () => {
    assert.equal(check("src/domain/x.ts", 'import { DurableObject } from "cloudflare:workers";\n').length, 1);
    assert.equal(check("src/domain/x.ts", 'import { readFileSync } from "node:fs";\n').length, 1);
  });

  it("does not report imports that run downwards or sideways within a part", () => {
    const text = [
      'import { z } from "zod";',
      'import type { BatchStatus } from "../domain/states";',
      'import { first } from "../durable/sql";',
      'import type { Env } from "../env";',
      'import { Outbox } from "./outbox";',
      'import { checkTarget } from "../domain/target-safety";',
    ].join("\n");
    assert.deepEqual(check("src/batch/x.ts", text), []);
    assert.deepEqual(
      check("src/domain/x.ts", 'import { z } from "zod";\nimport type { ItemCounts } from "./states";\n'),
      [],
    );
    assert.deepEqual(check("src/http/x.ts", 'import { BatchObject } from "../batch/batch-object";\n'), []);
  });

  it("exempts src/env.ts, which names the object classes for the bindings' types", () => {
    assert.deepEqual(check("src/env.ts", 'import type { BatchObject } from "./batch/batch-object";\n'), []);
  });

  it("takes absolute paths as well as project-relative ones", () => {
    const absolute = new URL("../src/account/x.ts", import.meta.url).pathname;
    assert.equal(check(absolute, 'import { y } from "../batch/y";\n').length, 1);
  });
});
