import { z } from 'zod';

/** Body of POST /admin/models/{model}/pin; an empty body pins. */
export const adminPinSchema = z.strictObject({
  /** true pins the model, false unpins it. */
  pinned: z.boolean().optional(),
});
