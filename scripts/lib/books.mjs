// An account's books over HTTP, for the scripted stories: credits, the whole ledger and every
// batch with its items, then the checks that they agree. Bounded: at most `maxPages` pages.

/** Every page of `read(cursor)` (each answers { entries|items, nextCursor }), up to `maxPages`. */
async function allPages(read, field, maxPages) {
  const rows = [];
  let cursor = null;
  for (let page = 0; page < maxPages; page++) {
    const r = await read(cursor);
    if (r.status !== 200) throw new Error(`page ${page}: ${r.status} ${JSON.stringify(r.body).slice(0, 200)}`);
    rows.push(...r.body[field]);
    cursor = r.body.nextCursor;
    if (cursor === null) return rows;
  }
  throw new Error(`more than ${maxPages} pages of ${field}`);
}

/**
 * Reads the books of the account behind `key`: `batchIds` are the batches to read in full.
 * Resolves to { credits, ledger, batches: [{ ...view, items }] }.
 */
export async function readBooks(api, key, batchIds, { maxPages = 50 } = {}) {
  const headers = { "x-api-key": key };
  const credits = (await api("GET", "/api/credits", { headers })).body;
  const ledger = await allPages(
    (cursor) => api("GET", `/api/credits/ledger?limit=100${cursor === null ? "" : `&cursor=${cursor}`}`, { headers }),
    "entries",
    maxPages,
  );
  const batches = [];
  for (const batchId of batchIds) {
    const path = `/api/batch/scrape/${batchId}?limit=100`;
    let view;
    const items = await allPages(
      async (cursor) => {
        const r = await api("GET", cursor === null ? path : `${path}&cursor=${cursor}`, { headers });
        view ??= r.body;
        return r;
      },
      "items",
      maxPages,
    );
    batches.push({ ...view, items });
  }
  return { credits, ledger, batches };
}

/** A batch that is over: a terminal status and nothing pending or running. */
export const isFinished = (b) =>
  ["completed", "failed", "cancelled"].includes(b?.status) && b.pendingCount === 0 && b.runningCount === 0;

const sum = (rows, pick = (r) => r.amount) => rows.reduce((n, r) => n + pick(r), 0);

/**
 * The checks that the books balance. `granted`: credits the account was given. `charged(item)`:
 * whether a failed item is charged (the page was fetched) rather than refunded.
 */
export function checkBooks(check, label, { credits, ledger, batches }, { granted, charged }) {
  check(
    `${label}: granted ${granted} === balance + reserved + used`,
    credits?.granted === granted && credits.balance + credits.reserved + credits.used === granted,
    credits,
  );
  check(`${label}: reserved is 0 at the end`, credits?.reserved === 0, credits);
  const ofKind = (kind, rows = ledger) => rows.filter((e) => e.kind === kind);
  check(
    `${label}: ledger totals match the balances (grant ${granted}, consume ${credits?.used}, refund ${credits?.refunded})`,
    sum(ofKind("grant")) === granted &&
      sum(ofKind("consume")) === credits?.used &&
      sum(ofKind("refund")) === credits?.refunded,
    { grant: sum(ofKind("grant")), consume: sum(ofKind("consume")), refund: sum(ofKind("refund")), credits },
  );
  check(
    `${label}: replaying the ledger row by row gives each row's balanceAfter and reservedAfter`,
    replayLedger(ledger) === null,
    replayLedger(ledger),
  );
  const wrong = [];
  for (const b of batches) {
    const rows = ledger.filter((e) => e.batchId === b.batchId);
    const items = b.items;
    const paid = items.filter((i) => i.status === "completed" || (i.status === "failed" && charged(i))).length;
    const returned = items.filter((i) => i.status === "cancelled" || (i.status === "failed" && !charged(i))).length;
    const expected = {
      terminal: true,
      items: b.totalUrls,
      creditsUsed: paid * b.creditsPerItem,
      creditsRefunded: returned * b.creditsPerItem,
      creditsReserved: b.creditsUsed + b.creditsRefunded,
      itemCredits: b.creditsUsed,
      reserve: b.creditsReserved,
      consume: b.creditsUsed,
      refund: b.creditsRefunded,
    };
    const got = {
      terminal: isFinished(b),
      items: items.length,
      creditsUsed: b.creditsUsed,
      creditsRefunded: b.creditsRefunded,
      creditsReserved: b.creditsReserved,
      itemCredits: sum(items, (i) => i.creditsUsed),
      reserve: sum(ofKind("reserve", rows)),
      consume: sum(ofKind("consume", rows)),
      refund: sum(ofKind("refund", rows)),
    };
    if (JSON.stringify(got) !== JSON.stringify(expected))
      wrong.push({ batchId: b.batchId, status: b.status, expected, got });
  }
  check(
    `${label}: each of ${batches.length} batches: used = charged items × price, refunded = returned items × price, reserved = used + refunded, ledger rows agree`,
    batches.length > 0 && wrong.length === 0,
    wrong.slice(0, 3),
  );
  const batchUsed = sum(batches, (b) => b.creditsUsed);
  check(
    `${label}: the batches' creditsUsed add up to the account's used (${credits?.used})`,
    batchUsed === credits?.used,
    { batchUsed, credits },
  );
}

/** Null when every row's balanceAfter/reservedAfter follows from the rows before it; else the first row that does not. */
function replayLedger(ledger) {
  const MOVES = { grant: [1, 0], reserve: [-1, 1], consume: [0, -1], refund: [1, -1] };
  let balance = 0;
  let reserved = 0;
  for (const e of [...ledger].sort((a, b) => a.id - b.id)) {
    const [db, dr] = MOVES[e.kind] ?? [NaN, NaN];
    balance += db * e.amount;
    reserved += dr * e.amount;
    if (e.balanceAfter !== balance || e.reservedAfter !== reserved) return { row: e, expected: { balance, reserved } };
  }
  return null;
}
