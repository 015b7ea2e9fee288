import { z } from 'zod';
import { statsSampleSchema } from '../../services/stats-sample.ts';

/** GET /stats: the series so far, oldest first, and the sampling interval. */
export const statsSchema = z.object({
  interval_ms: z.number().int(),
  samples: z.array(statsSampleSchema),
});
