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
// The story frame owns the signals and closes the browser itself: playwright's own SIGINT handler
// would exit the process (130) before the frame stops wrangler and prints the summary.
const LAUNCH = {
  executablePath: CHROMIUM,
  headless: true,
  args: ARGS,
  timeout: 30_000,
  handleSIGINT: false,
  handleSIGTERM: false,
  handleSIGHUP: false,
};

/** Stops the story at once (a failed `must`) when Chromium is not installed: call before starting anything. */
export function requireChromium(must) {
  if (!existsSync(CHROMIUM)) must(`Chromium is installed at ${CHROMIUM} (apt-get install chromium)`, false);
}

/** A browser; close it with `.close()`. */
export const launchChromium = () => chromium.launch(LAUNCH);

/** A persistent context on `userDataDir` (a fresh profile); close it with `.close()`. */
export const launchChromiumContext = (userDataDir, options = {}) =>
  chromium.launchPersistentContext(userDataDir, { ...LAUNCH, ...options });
