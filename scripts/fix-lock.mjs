// The registry these machines reach lacks recent macOS/Windows builds of workerd, so
// `npm install` leaves them out of package-lock.json and `npm ci` then refuses the lock.
// This adds the missing optional entries (never installed on Linux) for every workerd in
// the lock. Run it after any `npm install` that changes dependencies: `npm run lock:fix`.
import { readFileSync, writeFileSync } from "node:fs";

const PLATFORMS = [
  ["darwin-64", "darwin", "x64"],
  ["darwin-arm64", "darwin", "arm64"],
  ["windows-64", "win32", "x64"],
];
const lock = JSON.parse(readFileSync("package-lock.json", "utf8"));
let added = 0;
for (const [path, entry] of Object.entries(lock.packages)) {
  if (!path.endsWith("node_modules/workerd")) continue;
  const prefix = path.slice(0, -"workerd".length);
  for (const [suffix, os, cpu] of PLATFORMS) {
    const key = `${prefix}@cloudflare/workerd-${suffix}`;
    if (lock.packages[key]) continue;
    lock.packages[key] = {
      version: entry.version,
      cpu: [cpu],
      dev: true,
      license: "Apache-2.0",
      optional: true,
      os: [os],
      engines: { node: ">=16" },
    };
    added++;
  }
}
writeFileSync("package-lock.json", `${JSON.stringify(lock, null, 2)}\n`);
console.log(`fix-lock: added ${added} optional workerd platform entries`);
