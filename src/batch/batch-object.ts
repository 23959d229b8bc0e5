import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";

export class BatchObject extends DurableObject<Env> {}
