import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";

export class AccountObject extends DurableObject<Env> {}
