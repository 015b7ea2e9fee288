import { z } from 'zod';
import { embeddingExtensions } from './embeddings.ts';

const text = z.string().min(1, 'must not be empty');
/** Infinity's clients send this when the caller names no model; it means "the served one". */
const INFINITY_NO_MODEL = 'default/not-specified';

/** Extension fields every classify dialect accepts. */
const truncation = {
  truncate: embeddingExtensions.truncate,
  truncation_direction: embeddingExtensions.truncation_direction,
};

/** One label's score. */
const predictionSchema = z.object({ label: z.string(), score: z.number() });

/** Body of TEI's POST /predict. */
export const teiPredictRequestSchema = z.object({
  /**
   * As TEI reads it: a text; a flat list of one text or of a (text, text_pair) pair, which is
   * one input; or a batch of such lists. A flat list of more than two texts is refused, since
   * `["a", "b"]` is a pair, not a batch.
   */
  inputs: z.union([text, z.array(text).min(1).max(2), z.array(z.array(text).min(1).max(2)).min(1)], {
    error: 'inputs must be a text, a pair ["text", "text_pair"], or a batch [["text"], ["text", "text_pair"], ...]',
  }),
  /** Extension: the served classifier to use; without it, the default one. */
  model: z.string().min(1, 'model must not be empty').optional(),
  /** The model's raw logits instead of its activation (softmax, or a sigmoid per label for multi-label models). */
  raw_scores: z.boolean().default(false),
  ...truncation,
});

/** Answer of TEI's POST /predict: best first; one list for one input, a list of lists for a batch. */
export const teiPredictResponseSchema = z.union([z.array(predictionSchema), z.array(z.array(predictionSchema))]);

/** `input` of both /classify dialects: a text or a list of texts. */
const classifyInput = z.union([text, z.array(text).min(1, 'input must hold at least one text')], {
  error: 'input must be a non-empty string or an array of non-empty strings',
});

/** Body of Infinity's POST /classify; told apart from vLLM's by its `raw_scores` field. */
export const infinityClassifyRequestSchema = z.object({
  input: classifyInput,
  /** A served classifier; Infinity's own "default/not-specified" (its clients' default) means none. */
  model: z.string().min(1, 'model must not be empty').optional()
    .transform((name) => (name === INFINITY_NO_MODEL ? undefined : name)),
  /** The model's raw logits instead of its activation. */
  raw_scores: z.boolean().default(false),
  ...truncation,
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

/** Body of vLLM's POST /classify and /v1/classify. */
export const vllmClassifyRequestSchema = z.object({
  input: classifyInput,
  /** A served classifier; without it, the default one. */
  model: z.string().min(1, 'model must not be empty').optional(),
  /** false returns raw logits in `probs`; vLLM's default is true. */
  use_activation: z.boolean().optional(),
  /** vLLM's older names for use_activation, still accepted by it; use_activation wins. */
  softmax: z.boolean().optional(),
  activation: z.boolean().optional(),
  /** End-user id; accepted for compatibility and ignored. */
  user: z.string().optional(),
  ...truncation,
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

/** One label's score, as TEI and Infinity list them. */
export type Prediction = z.output<typeof predictionSchema>;
/** The answer of TEI's /predict. */
export type TeiPredictResponse = z.output<typeof teiPredictResponseSchema>;
/** The answer of Infinity's /classify. */
export type InfinityClassifyResponse = z.output<typeof infinityClassifyResponseSchema>;
/** The answer of vLLM's /classify. */
export type VllmClassifyResponse = z.output<typeof vllmClassifyResponseSchema>;
