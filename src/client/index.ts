/**
 * A thin typed client for the batch scrape API. Its types come from the same zod schemas
 * the server validates with (src/http/routes), so they cannot drift from the real routes.
 *
 * @example
 * const client = new BatchScrapeClient({ baseUrl: "https://api.example.com", apiKey: process.env.KEY! });
 * const { batchId } = await client.createBatch({ urls: ["https://example.com/"], output: "markdown" });
 * const { cancelledItems, creditsRefunded } = await client.cancelBatch(batchId);
 * for await (const line of client.results(batchId)) console.log(line.index, line.customId, line.status);
 */
import type { z } from "@hono/zod-openapi";
import type { resultRoutes } from "../http/routes/batch-results";
import type { batchRoutes, CreateBatchInput } from "../http/routes/batches";
import type { creditRoutes } from "../http/routes/credits";
import type { usageRoutes } from "../http/routes/usage";

type Routes = typeof batchRoutes & typeof creditRoutes & typeof resultRoutes & typeof usageRoutes;
/** The JSON body a route answers with on status S. */
type Json<R extends keyof Routes, S extends keyof Routes[R]["responses"]> = Routes[R]["responses"][S] extends {
  content: { "application/json": { schema: infer Schema extends z.ZodType } };
}
  ? z.infer<Schema>
  : never;

export type { CreateBatchInput };
export type CreatedBatch = Json<"create", 202>;
export type Batch = Json<"get", 200>;
export type BatchItem = Batch["items"][number];
export type BatchList = Json<"list", 200>;
export type CancelResult = Json<"cancel", 200>;
export type CancelAllResult = Json<"cancelAll", 200>;
export type RetryResult = Json<"retry", 202>;
export type Credits = Json<"getCredits", 200>;
export type LedgerPage = Json<"getLedger", 200>;
export type Receipt = Json<"receipt", 200>;
/** One line of the results stream (GET /api/batch/scrape/{batchId}/results). */
export type ResultLine =
  Routes["results"]["responses"][200]["content"]["application/x-ndjson"]["schema"] extends infer S extends z.ZodType
    ? z.infer<S>
    : never;
export type UsageStats = Json<"stats", 200>;

export interface ClientOptions {
  baseUrl: string;
  apiKey: string;
  /** Defaults to the global fetch. */
  fetch?: (request: Request) => Promise<Response>;
}

/** An API error: its HTTP status and the API's code (e.g. INSUFFICIENT_CREDITS). */
export class BatchScrapeError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "BatchScrapeError";
  }
}

export class BatchScrapeClient {
  readonly #options: ClientOptions;

  constructor(options: ClientOptions) {
    this.#options = options;
  }

  createBatch(body: CreateBatchInput, options: { idempotencyKey?: string } = {}): Promise<CreatedBatch> {
    const headers: Record<string, string> = options.idempotencyKey ? { "idempotency-key": options.idempotencyKey } : {};
    return this.#json("POST", "/api/batch/scrape", body, headers);
  }

  getBatch(batchId: string, page: { cursor?: string; limit?: number } = {}): Promise<Batch> {
    return this.#json("GET", `/api/batch/scrape/${encodeURIComponent(batchId)}${query(page)}`);
  }

  listBatches(page: { page?: number; limit?: number } = {}): Promise<BatchList> {
    return this.#json("GET", `/api/batch/scrape${query(page)}`);
  }

  cancelBatch(batchId: string): Promise<CancelResult> {
    return this.#json("DELETE", `/api/batch/scrape/${encodeURIComponent(batchId)}`);
  }

  cancelAll(): Promise<CancelAllResult> {
    return this.#json("POST", "/api/batch/scrape/cancel-all");
  }

  retryFailed(batchId: string): Promise<RetryResult> {
    return this.#json("POST", `/api/batch/scrape/${encodeURIComponent(batchId)}/retry`);
  }

  /** A completed item's result: parsed JSON for `output: "json"`, Markdown text otherwise. */
  async getResult(batchId: string, itemId: string): Promise<unknown> {
    const res = await this.#send(
      "GET",
      `/api/batch/scrape/${encodeURIComponent(batchId)}/items/${encodeURIComponent(itemId)}/result`,
    );
    return (res.headers.get("content-type") ?? "").includes("json") ? res.json() : res.text();
  }

  /**
   * Every item of the batch and its result, one line at a time in input order, read from the
   * stream as it arrives (constant memory on both sides). Stopping early (break, return, an
   * exception in the loop) cancels the download. `status` keeps only items in that state.
   */
  async *results(
    batchId: string,
    options: { status?: "completed" | "failed" | "cancelled" } = {},
  ): AsyncGenerator<ResultLine> {
    const res = await this.#send("GET", `/api/batch/scrape/${encodeURIComponent(batchId)}/results${query(options)}`);
    if (!res.body) return;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffered += value;
        let end = buffered.indexOf("\n");
        while (end >= 0) {
          const text = buffered.slice(0, end);
          buffered = buffered.slice(end + 1);
          if (text.trim() !== "") yield JSON.parse(text) as ResultLine;
          end = buffered.indexOf("\n");
        }
      }
      if (buffered.trim() !== "") yield JSON.parse(buffered) as ResultLine;
    } finally {
      // A loop left early: stop the download (the server stops reading the batch).
      await reader.cancel().catch(() => undefined);
    }
  }

  /** The raw download (NDJSON or CSV) as a Response, to save or pipe elsewhere. */
  download(
    batchId: string,
    options: { format?: "ndjson" | "csv"; status?: "completed" | "failed" | "cancelled" } = {},
  ): Promise<Response> {
    return this.#send("GET", `/api/batch/scrape/${encodeURIComponent(batchId)}/results${query(options)}`);
  }

  /** How the batch's credits moved: totals and a page of its ledger rows (follow `nextCursor` for more). */
  receipt(batchId: string, page: { cursor?: string; limit?: number } = {}): Promise<Receipt> {
    return this.#json("GET", `/api/batch/scrape/${encodeURIComponent(batchId)}/receipt${query(page)}`);
  }

  getCredits(): Promise<Credits> {
    return this.#json("GET", "/api/credits");
  }

  getLedger(page: { cursor?: string; limit?: number } = {}): Promise<LedgerPage> {
    return this.#json("GET", `/api/credits/ledger${query(page)}`);
  }

  /** Usage by day (`7d`, `30d`) or week (`weekly`), from the ledger. */
  getUsage(range: "7d" | "30d" | "weekly"): Promise<UsageStats> {
    return this.#json("GET", `/api/usage-stats?range=${range}`);
  }

  async #json<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    return (await (await this.#send(method, path, body, headers)).json()) as T;
  }

  async #send(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
    const request = new Request(new URL(path, this.#options.baseUrl), {
      method,
      headers: {
        "x-api-key": this.#options.apiKey,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const res = await (this.#options.fetch ?? fetch)(request);
    if (!res.ok) {
      const error = (await res.json().catch(() => ({}))) as { code?: string; message?: string };
      throw new BatchScrapeError(res.status, error.code ?? "HTTP_ERROR", error.message ?? res.statusText);
    }
    return res;
  }
}

function query(params: Record<string, string | number | undefined>): string {
  const entries = Object.entries(params).filter((e): e is [string, string | number] => e[1] !== undefined);
  return entries.length === 0 ? "" : `?${new URLSearchParams(entries.map(([k, v]) => [k, String(v)]))}`;
}
