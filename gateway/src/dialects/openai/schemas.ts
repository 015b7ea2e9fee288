import { z } from 'zod';
import { QUANTIZED_TYPES } from '../shared/quantize.ts';
import { embeddingExtensions, tokenIds } from '../shared/fields.ts';

/** A text to embed; OpenAI refuses empty strings too. */
const input = z.string().min(1, 'inputs must not be empty strings');

/** Body of POST /v1/embeddings, as the OpenAI API defines it. */
export const embeddingsRequestSchema = z.object({
  /** A text, a list of texts, a list of token ids, or a list of such lists. */
  input: z.union([input, z.array(input).min(1, 'input must hold at least one text'), tokenIds, z.array(tokenIds).min(1)], {
    error: (issue) => (issue.input === undefined ? 'input is required'
      : Array.isArray(issue.input) && issue.input.length === 0 ? 'input must hold at least one text'
        : 'input must be a string, an array of strings, an array of token ids or an array of arrays of token ids'),
  }),
  /** A served model or one of MODEL_ALIASES; without it, the default model (see docs/api.md). */
  model: z.string({ error: 'model must be a string' }).min(1, 'model must not be empty').optional(),
  /**
   * float: JSON numbers; base64: the little-endian float32 bytes, base64-encoded. Extension, for
   * dense vectors: int8, uint8, binary or ubinary integers, scaled and packed as dialects/shared/quantize.ts says.
   */
  encoding_format: z.enum(['float', 'base64', ...QUANTIZED_TYPES]).default('float'),
  /** Output size: the model's own, or one of its Matryoshka sizes (cut, then normalised again). */
  dimensions: z.number().int().positive().optional(),
  /** End-user id; accepted for compatibility and ignored. */
  user: z.string().optional(),
  /** Extension: dense (default), sparse ({indices, values} per input) or colbert (one vector per token). */
  embedding_type: z.enum(['dense', 'sparse', 'colbert']).default('dense'),
  ...embeddingExtensions,
});

/** A validated embeddings request. */
export type EmbeddingsRequest = z.output<typeof embeddingsRequestSchema>;

/** One input's embedding: floats or base64 (dense, colbert), or {indices, values} (sparse). */
export const embeddingSchema = z.object({
  object: z.literal('embedding'),
  index: z.number().int(),
  embedding: z.union([
    z.array(z.number()),
    z.string(),
    z.array(z.array(z.number())),
    z.object({ indices: z.array(z.number().int()), values: z.array(z.number()) }),
  ]),
});

/** Answer of POST /v1/embeddings. */
export const embeddingsResponseSchema = z.object({
  object: z.literal('list'),
  data: z.array(embeddingSchema),
  model: z.string(),
  usage: z.object({ prompt_tokens: z.number().int(), total_tokens: z.number().int() }),
});

/** The answer's type. */
export type EmbeddingsResponse = z.output<typeof embeddingsResponseSchema>;
