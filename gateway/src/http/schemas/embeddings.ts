import { z } from 'zod';
import { QUANTIZED_TYPES } from '../quantize.ts';

/** A non-empty text; OpenAI refuses empty strings too. */
const text = z.string().min(1, 'inputs must not be empty strings');
const tokenId = z.number().int().nonnegative();
const tokenIds = z.array(tokenId).min(1, 'token-id inputs must not be empty');

/** Extension fields shared by every embedding route that accepts them. */
export const embeddingExtensions = {
  /** Extension: query or document; picks the model's default prompt (default document). */
  input_type: z.enum(['query', 'document']).optional(),
  /** Extension: one of the model's own prompts (see GET /v1/models), overriding input_type. */
  prompt_name: z.string().min(1).optional(),
  /** Extension: cut (true) or refuse (false) inputs longer than the model's limit; default AUTO_TRUNCATE. */
  truncate: z.boolean().optional(),
  /** Extension: where over-long inputs are cut: right (default) keeps the start, left keeps the end. */
  truncation_direction: z.enum(['left', 'right', 'Left', 'Right']).optional(),
  /** Extension: false returns vectors before the model's final L2 normalisation. */
  normalize: z.boolean().optional(),
  /** Extension: which tokenizer wrote token-id inputs: cl100k_base or o200k_base (OpenAI's), or model. Default: the route's dialect (see docs/api.md). */
  tokenizer: z.enum(['cl100k_base', 'o200k_base', 'model']).optional(),
};

/** Body of POST /v1/embeddings, as the OpenAI API defines it. */
export const embeddingsRequestSchema = z.object({
  /** A text, a list of texts, a list of token ids, or a list of such lists. */
  input: z.union([text, z.array(text).min(1, 'input must hold at least one text'), tokenIds, z.array(tokenIds).min(1)], {
    error: (issue) => (issue.input === undefined ? 'input is required'
      : Array.isArray(issue.input) && issue.input.length === 0 ? 'input must hold at least one text'
        : 'input must be a string, an array of strings, an array of token ids or an array of arrays of token ids'),
  }),
  /** A served model or one of MODEL_ALIASES; without it, the default model (see docs/api.md). */
  model: z.string({ error: 'model must be a string' }).min(1, 'model must not be empty').optional(),
  /**
   * float: JSON numbers; base64: the little-endian float32 bytes, base64-encoded. Extension, for
   * dense vectors: int8, uint8, binary or ubinary integers, scaled and packed as http/quantize.ts says.
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
