/** Helpers for the results download and receipt tests. */
import { env } from "cloudflare:workers";
import { batchStub, call, createBatch } from "../helpers";

export interface Line {
  index: number;
  itemId: string;
  customId: string | null;
  url: string;
  status: string;
  error: string | null;
  errorCode: string | null;
  creditsUsed: number;
  metadata: Record<string, unknown> | null;
  result: unknown;
}

export function resultsOf(apiKey: string, batchId: string, query = ""): Promise<Response> {
  return call(`/api/batch/scrape/${batchId}/results${query}`, { headers: { "x-api-key": apiKey } });
}

export async function ndjson(res: Response): Promise<Line[]> {
  const text = await res.text();
  if (text === "") return [];
  if (!text.endsWith("\n")) throw new Error("NDJSON must end with a newline");
  return text
    .slice(0, -1)
    .split("\n")
    .map((l) => JSON.parse(l) as Line);
}

/** A strict RFC 4180 reader: quoted fields may hold commas, doubled quotes, CR and LF; rows end in CRLF. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let i = 0;
  while (i < text.length) {
    let field = "";
    if (text[i] === '"') {
      i++;
      for (;;) {
        if (i >= text.length) throw new Error("unterminated quoted field");
        if (text[i] === '"') {
          if (text[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += text[i++];
      }
    } else {
      while (i < text.length && text[i] !== "," && text[i] !== "\r" && text[i] !== "\n") {
        if (text[i] === '"') throw new Error(`bare quote at ${i}`);
        field += text[i++];
      }
    }
    row.push(field);
    if (text[i] === ",") {
      i++;
    } else if (text.startsWith("\r\n", i)) {
      rows.push(row);
      row = [];
      i += 2;
    } else {
      throw new Error(`expected , or CRLF at ${i}, got ${JSON.stringify(text[i])}`);
    }
  }
  if (row.length > 0) throw new Error("last row does not end with CRLF");
  return rows;
}

/** Creates a batch from `entries` (strings or labelled objects) and returns its id and item ids in order. */
export async function labelledBatch(
  account: { apiKey: string; accountId: string },
  entries: unknown[],
  extra: Record<string, unknown> = {},
) {
  const created = await createBatch(account.apiKey, { urls: entries, ...extra });
  if (created.status !== 202) throw new Error(`create: ${created.status} ${JSON.stringify(created.body)}`);
  const batchId: string = created.body.batchId;
  const found = await batchStub(batchId).get(account.accountId, -1, 1000);
  if (!found.ok) throw new Error(found.message);
  return { batchId, itemIds: found.items.map((i) => i.uuid) };
}

/** Runs an item to completion as the executor would: the result in R2, nothing inline. */
export async function completeStored(batchId: string, itemId: string, content: string, contentType: string) {
  const stub = batchStub(batchId);
  const lease = await stub.startItem(itemId);
  if (lease.action !== "run") throw new Error(`not started: ${lease.reason}`);
  const resultKey = `results/${batchId}/${itemId}`;
  await env.RESULTS.put(resultKey, content, { httpMetadata: { contentType } });
  return stub.completeItem(itemId, lease.attempt, null, { resultKey, statusCode: 200 });
}
