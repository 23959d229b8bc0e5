/** Every ledger entry of an account, read straight from its object (newest first). */
import type { AccountObject } from "../../src/account/account-object";
import { accountStub } from "../helpers";

export async function readLedger(accountId: string) {
  const account = accountStub(accountId);
  const entries = [];
  let cursor: number | null = null;
  for (let page = 0; page < 1000; page++) {
    const got: Awaited<ReturnType<AccountObject["listLedger"]>> = await account.listLedger(cursor, 100);
    entries.push(...got.entries);
    cursor = got.nextCursor;
    if (cursor === null) break;
  }
  return entries;
}
