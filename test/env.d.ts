// Types for the test runtime: `env` and `exports` from "cloudflare:workers".
declare global {
  namespace Cloudflare {
    interface Env extends import("../src/env").Env {}
    interface GlobalProps {
      mainModule: typeof import("../src/index");
      durableNamespaces: "BatchObject" | "AccountObject";
    }
  }
}
export {};
