/** The queue message that asks the executor to run one item. */
import { z } from "zod";

export const ScrapeMessageSchema = z.object({
  v: z.literal(1),
  batchId: z.string().uuid(),
  itemId: z.string().uuid(),
  /** The item's dispatch token: a message from an older dispatch is dropped. */
  dispatch: z.number().int().positive(),
});

export type ScrapeMessage = z.infer<typeof ScrapeMessageSchema>;

/** A row of the batch object's `sends` outbox. */
export interface QueueSend {
  kind: "dispatch";
  body: ScrapeMessage;
  delaySeconds: number;
}
