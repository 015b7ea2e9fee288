import { z } from 'zod';
import { embeddingExtensions } from './embeddings.ts';

const inputs = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)], {
  error: 'inputs must be a non-empty string or array of non-empty strings',
});

/** Body of TEI's POST /embed. */
export const teiEmbedRequestSchema = z.object({
  inputs,
  /** Extension: the served model to use; default the first embedding model. */
  model: z.string().min(1).optional(),
  normalize: z.boolean().default(true),
  dimensions: z.number().int().positive().optional(),
  truncate: embeddingExtensions.truncate,
  truncation_direction: embeddingExtensions.truncation_direction,
  prompt_name: embeddingExtensions.prompt_name,
});

/** Body of TEI's POST /embed_sparse. */
export const teiEmbedSparseRequestSchema = teiEmbedRequestSchema.omit({ normalize: true, dimensions: true });

/** Body of TEI's POST /rerank. */
export const teiRerankRequestSchema = z.object({
  query: z.string().min(1, 'query must not be empty'),
  texts: z.array(z.string().min(1)).min(1, 'texts must hold at least one text'),
  model: z.string().min(1).optional(),
  raw_scores: z.boolean().default(false),
  return_text: z.boolean().default(false),
  truncate: z.boolean().optional(),
});

/** Answer of TEI's POST /rerank: best first. */
export const teiRerankResponseSchema = z.array(z.object({ index: z.number().int(), score: z.number(), text: z.string().optional() }));
