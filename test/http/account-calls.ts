/**
 * Counting calls into account objects (any of them, from the Worker or from batch objects):
 * every method of the AccountObject class is wrapped while `fn` runs, then put back. The
 * runtime looks an RPC method up on the prototype at each call, so every call is seen; a
 * method called from inside another (its private helpers) is not a call into the object.
 */
import { runInDurableObject } from "cloudflare:test";
import { accountStub } from "../helpers";

export async function countAccountCalls<T>(fn: () => Promise<T>): Promise<{ value: T; calls: string[] }> {
  const proto = await runInDurableObject(accountStub(crypto.randomUUID()), (o) => Object.getPrototypeOf(o));
  const calls: string[] = [];
  let depth = 0;
  const real = new Map<string, (...args: unknown[]) => unknown>();
  for (const name of Object.getOwnPropertyNames(proto)) {
    const method = Object.getOwnPropertyDescriptor(proto, name)?.value;
    if (name === "constructor" || typeof method !== "function") continue;
    real.set(name, method);
    proto[name] = function (this: unknown, ...args: unknown[]) {
      if (depth === 0) calls.push(name);
      depth++;
      try {
        return method.apply(this, args);
      } finally {
        depth--; // an async method's own calls after its first await count as calls in (none on reads)
      }
    };
  }
  try {
    return { value: await fn(), calls };
  } finally {
    for (const [name, method] of real) proto[name] = method;
  }
}
