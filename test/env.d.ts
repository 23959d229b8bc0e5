// Types for the test runtime: `env` and `exports` from "cloudflare:workers".
import type { Env as WorkerEnv } from "../src/env";

declare global {
  namespace Cloudflare {
    interface Env extends WorkerEnv {}
    interface GlobalProps {
      mainModule: typeof import("../src/index");
      durableNamespaces: "BatchObject" | "AccountObject";
    }
  }
}
