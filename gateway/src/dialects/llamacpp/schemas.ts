import { z } from 'zod';
import { embeddingExtensions, text, tokenId, tokenIds } from '../shared/fields.ts';

const content = z.union([text, z.array(text).min(1), tokenIds, z.array(tokenIds).min(1)], {
  error: 'must be a string, an array of strings, or token ids',
});

/** Body of llama.cpp's POST /embedding and POST /embeddings (non-OpenAI). Token ids are the model's own unless `tokenizer` says otherwise. */
export const llamaEmbeddingRequestSchema = z.object({
  /** What to embed (llama.cpp's field); `input` is accepted as a synonym. */
  content: content.optional(),
  input: content.optional(),
  /** The served model to use (our extension; llama.cpp serves one). Default: see model selection in docs/api.md. */
  model: z.string().min(1).optional(),
  /** -1 none, 0 max-abs scaled to int16, 1 taxicab, 2 Euclidean (default), >2 p-norm. */
  embd_normalize: z.number().int().min(-1).default(2),
  ...embeddingExtensions,
}).refine((b) => b.content !== undefined || b.input !== undefined, { message: 'content is required', path: ['content'] });

/** Answer of llama.cpp's embedding routes: one nested vector per input. */
export const llamaEmbeddingResponseSchema = z.array(z.object({ index: z.number().int(), embedding: z.array(z.array(z.number())) }));

/** Body of POST /tokenize in llama.cpp's shape. */
export const llamaTokenizeRequestSchema = z.object({
  content: z.string(),
  model: z.string().min(1).optional(),
  add_special: z.boolean().default(false),
  with_pieces: z.boolean().default(false),
});

/** Answer of llama.cpp's POST /tokenize: ids, or with pieces, each id with its span of the text. */
export const llamaTokenizeResponseSchema = z.object({
  tokens: z.array(z.union([z.number().int(), z.object({ id: z.number().int(), piece: z.string() })])),
});

/** Body of llama.cpp's POST /detokenize. */
export const llamaDetokenizeRequestSchema = z.object({
  tokens: z.array(tokenId),
  model: z.string().min(1).optional(),
});
