/** Opening live views (GET /api/batch/scrape/{batchId}/live) the way a browser does, and watching them. */
import { afterEach, expect } from "vitest";
import { call, readAnswer } from "../helpers";

export type LiveMessage = { type: string; batch: Record<string, any>; item?: Record<string, any> };

/** An open client socket and the messages it has received, with a way to wait for the next ones. */
export interface Live {
  res: Response;
  ws: WebSocket;
  messages: LiveMessage[];
  raw: string[];
  /** Resolves with the close code and reason once the socket is closed. */
  closed: Promise<{ code: number; reason: string }>;
  next(predicate?: (m: LiveMessage) => boolean, ms?: number): Promise<LiveMessage>;
}

const opened: WebSocket[] = [];
/** Closes, after each test, the sockets the test opened and left open. */
export function closeLiveAfterEach(): void {
  afterEach(() => {
    for (const ws of opened.splice(0)) {
      try {
        ws.close(1000, "test done");
      } catch {
        // already closed
      }
    }
  });
}

export function liveRequest(batchId: string, headers: Record<string, string>): Promise<Response> {
  return call(`/api/batch/scrape/${batchId}/live`, { headers });
}

export function browserHeaders(apiKey: string): Record<string, string> {
  return { upgrade: "websocket", "sec-websocket-protocol": `batch-live, ${apiKey}` };
}

/** Takes the client end of an answered upgrade and records what it receives. */
export function watchLive(res: Response): Live {
  const ws = res.webSocket;
  expect(ws).toBeTruthy();
  ws!.accept();
  opened.push(ws!);
  const messages: LiveMessage[] = [];
  const raw: string[] = [];
  let seen = 0;
  const waiters: (() => void)[] = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws!.addEventListener("close", (ev) => resolve({ code: ev.code, reason: ev.reason })),
  );
  ws!.addEventListener("message", (ev) => {
    const text = typeof ev.data === "string" ? ev.data : new TextDecoder().decode(ev.data as ArrayBuffer);
    raw.push(text);
    if (text !== "pong") messages.push(JSON.parse(text) as LiveMessage);
    for (const w of waiters.splice(0)) w();
  });
  async function next(predicate: (m: LiveMessage) => boolean = () => true, ms = 3000): Promise<LiveMessage> {
    const deadline = Date.now() + ms;
    for (;;) {
      while (seen < messages.length) {
        const m = messages[seen++]!;
        if (predicate(m)) return m;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching live message within ${ms} ms (got ${messages.length})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 100));
        waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }
  return { res, ws: ws!, messages, raw, closed, next };
}

export async function openLive(batchId: string, apiKey: string): Promise<Live> {
  const res = await liveRequest(batchId, browserHeaders(apiKey));
  expect(res.status).toBe(101);
  return watchLive(res);
}

/** A response read as the error helpers want it (JSON when it parses). */
export async function asAnswer(pending: Promise<Response>): Promise<{ status: number; body: any; res: Response }> {
  return readAnswer(await pending);
}

/** Rejects when `p` has not settled within `ms` (a close that never comes fails the test, not the run). */
export function within<T>(p: Promise<T>, ms = 3000): Promise<T> {
  return Promise.race([
    p,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`not within ${ms} ms`)), ms)),
  ]);
}
