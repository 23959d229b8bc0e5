// Debian's Chromium driven by playwright-core, as the browser stories (browser-test, docs-test) start it.
import { existsSync } from "node:fs";
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const ARGS = [
  "--headless=new",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const LAUNCH = { executablePath: CHROMIUM, headless: true, args: ARGS, timeout: 30_000 };

/** Stops the story at once (a failed `must`) when Chromium is not installed: call before starting anything. */
export function requireChromium(must) {
  if (!existsSync(CHROMIUM)) must(`Chromium is installed at ${CHROMIUM} (apt-get install chromium)`, false);
}

/** A browser; close it with `.close()`. */
export const launchChromium = () => chromium.launch(LAUNCH);

/** A persistent context on `userDataDir` (a fresh profile); close it with `.close()`. */
export const launchChromiumContext = (userDataDir, options = {}) => chromium.launchPersistentContext(userDataDir, { ...LAUNCH, ...options });
