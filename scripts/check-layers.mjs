// The walls between the parts of src/, checked on every `npm run lint`:
//   src/http/ calls src/batch/ and src/account/, never the executor; the executor calls the
//   batch object only; the registry calls no other part; the client imports the routes' types
//   and nothing at runtime; everything builds on src/domain/ (pure rules: no I/O, nothing
//   above it).
// An import (type-only ones too) that runs one of the forbidden ways below fails the run.
// src/env.ts is exempt: it names the object classes for the bindings' types, as
// `wrangler types` would.
// Node built-ins only.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/**
 * Each rule: files under `from` may not import anything under one of `deny` (project paths,
 * unless under one of `except`), nor a package whose name starts with one of `denyPackages`;
 * with `typesOnly`, nothing at all at runtime: every import must be `import type` or
 * `export type` (an inline `import { type X }` may stay behind as an import, and import()
 * counts as one that runs).
 */
export const RULES = [
  {
    from: "src/domain/",
    deny: ["src/"],
    except: ["src/domain/"],
    why: "the domain is pure and imports nothing above it",
  },
  { from: "src/domain/", denyPackages: ["cloudflare:", "node:"], why: "the domain is pure: no platform I/O" },
  {
    from: "src/http/",
    deny: ["src/executor/"],
    why: "the routes reach the executor only through the batch object",
  },
  {
    from: "src/account/",
    deny: ["src/batch/", "src/executor/", "src/http/"],
    why: "the account never reaches into the batch object, the executor or the routes",
  },
  {
    from: "src/batch/",
    deny: ["src/executor/", "src/account/", "src/http/"],
    why: "the batch object never reaches into the executor, the account object or the routes",
  },
  {
    from: "src/executor/",
    deny: ["src/account/", "src/batch/", "src/http/"],
    why: "the executor talks to the batch object through the shared contract only",
  },
  {
    from: "src/webhooks/",
    deny: ["src/account/", "src/batch/", "src/executor/", "src/http/"],
    why: "webhooks are a service below the objects",
  },
  {
    from: "src/registry/",
    deny: ["src/account/", "src/batch/", "src/executor/", "src/http/", "src/webhooks/"],
    why: "the registry lists account ids; it calls no other part",
  },
  {
    from: "src/client/",
    deny: ["src/"],
    except: ["src/client/", "src/http/routes/"],
    why: "the client knows the server by its routes' schemas only",
  },
  { from: "src/client/", typesOnly: true, why: "the client runs outside the Worker: types only" },
  { from: "src/lib/", deny: ["src/"], except: ["src/lib/"], why: "small helpers depend on nothing of the project" },
  {
    from: "src/durable/",
    deny: ["src/"],
    except: ["src/durable/", "src/lib/"],
    why: "platform helpers depend on nothing above them",
  },
];

// import/export ... from "x" (names over several lines, comments among them), bare import "x",
// and import("x") (type positions too).
const IMPORT =
  /(?:^|[;\s])(?:import|export)\s+(type\s+)?(?:(?:[\w*{}\s,$]|\/\/[^\n]*|\/\*[\s\S]*?\*\/)+?\s+from\s+)?["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;

function* sourceFiles(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sourceFiles(path);
    else if (/\.(ts|tsx|mts)$/.test(entry.name)) yield path;
  }
}

/** A path (absolute, or relative to the project root) as the rules spell it: "src/batch/rows". */
function projectPath(path) {
  return relative(ROOT, resolve(ROOT, path)).split("\\").join("/");
}

/** Every import in a file's text: its specifier as written, and whether it is erased (`import type`). */
function importStatements(text) {
  return [...text.matchAll(IMPORT)].map((match) => ({ spec: match[2] ?? match[3], typeOnly: match[1] !== undefined }));
}

/** Every import specifier in a file's text, as written. */
export function specifiersOf(text) {
  return importStatements(text).map((i) => i.spec);
}

/** The project-relative targets of a file's relative imports (packages: specifiersOf). */
export function importsOf(file, text) {
  return specifiersOf(text)
    .filter((spec) => spec.startsWith("."))
    .map((spec) => projectPath(resolve(ROOT, dirname(file), spec)));
}

/**
 * The forbidden imports among `files` ({ path, text }; path absolute or relative to the
 * project root), one line each.
 */
export function violations(files) {
  const out = [];
  for (const { path, text } of files) {
    const from = projectPath(path);
    for (const rule of RULES) {
      if (!from.startsWith(rule.from)) continue;
      for (const target of importsOf(path, text)) {
        const denied = (rule.deny ?? []).some((d) => target.startsWith(d) || `${target}/` === d);
        const excepted = (rule.except ?? []).some((e) => target.startsWith(e));
        if (denied && !excepted) out.push(`${from} imports ${target}: ${rule.why}`);
      }
      for (const { spec, typeOnly } of importStatements(text)) {
        if ((rule.denyPackages ?? []).some((p) => spec.startsWith(p))) out.push(`${from} imports ${spec}: ${rule.why}`);
        if (rule.typesOnly && !typeOnly) out.push(`${from} imports ${spec} at runtime: ${rule.why}`);
      }
    }
  }
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const files = [...sourceFiles(join(ROOT, "src"))].map((path) => ({ path, text: readFileSync(path, "utf8") }));
  const found = violations(files);
  for (const line of found) console.error(`layers: ${line}`);
  console.log(`layers: ${files.length} files, ${found.length} forbidden imports`);
  process.exit(found.length ? 1 : 0);
}
