/**
 * The account object as the HTTP bench runs it: the real class, counting the calls made
 * into it (its methods called from outside, not the helpers they call), so the bench can
 * report account-object calls per request. `benchAccountCalls()` answers the count since the
 * last time it was asked (it is not counted itself).
 */
import { AccountObject as RealAccountObject } from "../src/account/account-object";

const COUNTED = Object.getOwnPropertyNames(RealAccountObject.prototype).filter(
  (name) =>
    name !== "constructor" &&
    typeof Object.getOwnPropertyDescriptor(RealAccountObject.prototype, name)?.value === "function",
);

export class CountingAccountObject extends RealAccountObject {
  benchCalls = 0;
  benchDepth = 0;

  benchAccountCalls(): number {
    const n = this.benchCalls;
    this.benchCalls = 0;
    return n;
  }
}

const proto = CountingAccountObject.prototype as unknown as Record<string, unknown>;
for (const name of COUNTED) {
  const real = (RealAccountObject.prototype as unknown as Record<string, (...a: unknown[]) => unknown>)[name]!;
  proto[name] = function (this: CountingAccountObject, ...args: unknown[]) {
    if (this.benchDepth === 0 && name !== "alarm") this.benchCalls++;
    this.benchDepth++;
    try {
      return real.apply(this, args);
    } finally {
      this.benchDepth--;
    }
  };
}
