import { z } from 'zod';

// Beside traffic-stats.ts, which produces it, and free of Node imports: GET /stats serves it and the
// dashboard's browser code reads its type.

/**
 * One point of the live traffic series: what happened in the interval that ended at `t`, read
 * from the same counters /metrics exports. Rates are per second; null where the interval had
 * nothing to measure (no request finished, no input computed).
 */
export const statsSampleSchema = z.object({
  /** End of the interval, Unix milliseconds. */
  t: z.number().int(),
  /** Requests that named a model, finished in the interval, any status. */
  requests_per_s: z.number(),
  /** Inputs answered, computed or from the cache. */
  inputs_per_s: z.number(),
  /** Tokens the runners computed. */
  tokens_per_s: z.number(),
  /** Request latency quantiles over the interval, from the histogram's buckets as Prometheus interpolates them. */
  latency_p50_ms: z.number().nullable(),
  latency_p99_ms: z.number().nullable(),
  /** Requests waiting for a runner at `t`, across models. */
  queue_depth: z.number().int(),
  /** Mean inputs per runner call. */
  batch_inputs_mean: z.number().nullable(),
  /** Share of inputs answered from the embedding cache. */
  cache_hit_rate: z.number().nullable(),
  /** Requests answered 429 (overloaded) and 503 (unavailable) in the interval. */
  rejected_429: z.number().int(),
  rejected_503: z.number().int(),
});

/** A sample of the series. */
export type StatsSample = z.infer<typeof statsSampleSchema>;
