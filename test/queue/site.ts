/** A fake web for queue tests: `globalThis.fetch` answers from scripted pages, and counts. */
import { vi } from "vitest";

export interface Page {
  status?: number;
  html?: string;
  headers?: Record<string, string>;
  /** Resolve this to let a held request answer. */
  gate?: Promise<void>;
}

export function fakeSite(pages: (url: string, hit: number) => Page) {
  const hits = new Map<string, number>();
  let inFlight = 0;
  let maxInFlight = 0;
  const spy = vi.spyOn(globalThis, "fetch").mockImplementation(async (input: RequestInfo | URL) => {
    const url = input instanceof Request ? input.url : String(input);
    const hit = (hits.get(url) ?? 0) + 1;
    hits.set(url, hit);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      const page = pages(url, hit);
      if (page.gate) await page.gate;
      return new Response(page.html ?? `<html><head><title>${url}</title></head><body><h1>Hello</h1></body></html>`, {
        status: page.status ?? 200,
        headers: { "content-type": "text/html; charset=utf-8", ...page.headers },
      });
    } finally {
      inFlight--;
    }
  });
  return {
    hits,
    total: () => [...hits.values()].reduce((a, b) => a + b, 0),
    maxInFlight: () => maxInFlight,
    restore: () => spy.mockRestore(),
  };
}

/** A gate that holds requests until opened. */
export function gate() {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}
