import { z } from 'zod';

/** A non-empty text; OpenAI refuses empty strings too. */
export const text = z.string().min(1, 'must not be empty');

/** `input` of the /classify dialects: a text or a list of texts. */
export const textOrTexts = z.union([text, z.array(text).min(1, 'input must hold at least one text')], {
  error: 'input must be a non-empty string or an array of non-empty strings',
});

/**
 * A token id. The runner contract carries ids as uint32, so a larger one is refused here rather
 * than cut to 32 bits on the way; the model's own vocabulary is checked by the runner.
 */
export const tokenId = z.number().int().nonnegative().max(0xffff_ffff, 'token ids must be below 2^32');

/** One sequence of token ids. */
export const tokenIds = z.array(tokenId).min(1, 'token-id inputs must not be empty');

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
