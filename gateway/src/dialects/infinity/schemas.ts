import { z } from 'zod';
import { embeddingExtensions, textOrTexts } from '../shared/fields.ts';
import { predictionSchema } from '../shared/predictions.ts';

/** Infinity's clients send this when the caller names no model; it means "the served one". */
const INFINITY_NO_MODEL = 'default/not-specified';

/** Body of Infinity's POST /classify; told apart from vLLM's by its `raw_scores` field. */
export const infinityClassifyRequestSchema = z.object({
  input: textOrTexts,
  /** A served classifier; Infinity's own "default/not-specified" (its clients' default) means none. */
  model: z.string().min(1, 'model must not be empty').optional()
    .transform((name) => (name === INFINITY_NO_MODEL ? undefined : name)),
  /** The model's raw logits instead of its activation. */
  raw_scores: z.boolean().default(false),
  truncate: embeddingExtensions.truncate,
  truncation_direction: embeddingExtensions.truncation_direction,
});

/** Answer of Infinity's POST /classify: every label, best first, per input. */
export const infinityClassifyResponseSchema = z.object({
  object: z.literal('classify'),
  data: z.array(z.array(predictionSchema)),
  model: z.string(),
  usage: z.object({ prompt_tokens: z.number().int(), total_tokens: z.number().int() }),
  id: z.string(),
  created: z.number().int(),
});

/** The answer of Infinity's /classify. */
export type InfinityClassifyResponse = z.output<typeof infinityClassifyResponseSchema>;
