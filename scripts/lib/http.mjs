// One HTTP request from a script to `wrangler dev` (the story frame's `api`, scripts/load.mjs).
// Node built-ins only.

/**
 * Sends `body` as JSON (a string as it is), never follows redirects, reads the whole answer.
 * Resolves to { status, body (parsed JSON, else the text), text, bytes, headers }; rejects
 * with fetch's error (network, `signal` aborted).
 */
export async function requestJson(url, method, { body, headers = {}, signal } = {}) {
  const res = await fetch(url, {
    method,
    headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    signal,
    redirect: "manual",
  });
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, body: json ?? text, text, bytes: Buffer.byteLength(text), headers: res.headers };
}
