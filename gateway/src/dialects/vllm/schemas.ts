import { z } from 'zod';
import { embeddingExtensions, textOrTexts } from '../shared/fields.ts';

/** Body of vLLM's POST /classify and /v1/classify. */
export const vllmClassifyRequestSchema = z.object({
  input: textOrTexts,
  /** A served classifier; without it, the default one. */
  model: z.string().min(1, 'model must not be empty').optional(),
  /** false returns raw logits in `probs`; vLLM's default is true. */
  use_activation: z.boolean().optional(),
  /** vLLM's older names for use_activation, still accepted by it; use_activation wins. */
  softmax: z.boolean().optional(),
  activation: z.boolean().optional(),
  /** End-user id; accepted for compatibility and ignored. */
  user: z.string().optional(),
  truncate: embeddingExtensions.truncate,
  truncation_direction: embeddingExtensions.truncation_direction,
});

/** Answer of vLLM's POST /classify: per input, the best label and every label's score in id order. */
export const vllmClassifyResponseSchema = z.object({
  id: z.string(),
  object: z.literal('list'),
  created: z.number().int(),
  model: z.string(),
  data: z.array(z.object({
    index: z.number().int(),
    label: z.string(),
    probs: z.array(z.number()),
    num_classes: z.number().int(),
  })),
  usage: z.object({
    prompt_tokens: z.number().int(),
    total_tokens: z.number().int(),
    completion_tokens: z.literal(0),
    prompt_tokens_details: z.null(),
  }),
});

/** The answer of vLLM's /classify. */
export type VllmClassifyResponse = z.output<typeof vllmClassifyResponseSchema>;
