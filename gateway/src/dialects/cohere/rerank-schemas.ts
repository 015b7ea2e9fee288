import { z } from 'zod';
import { text } from '../shared/fields.ts';

/** Body of POST /v1/rerank and its aliases: the Cohere / Jina / llama.cpp shape. */
export const rerankRequestSchema = z.object({
  /** A served reranker; llama.cpp clients may leave it out (the first reranker answers). */
  model: z.string().min(1, 'model must not be empty').optional(),
  /** What the documents are ranked against. */
  query: z.string({ error: 'query is required and must be a string' }).min(1, 'query must not be empty'),
  /** Plain strings, or objects with a `text` field (Cohere's and Jina's older form). */
  documents: z.array(z.union([text, z.object({ text })], { error: 'each document must be a non-empty string or {"text": "..."}' }),
    { error: 'documents is required and must be an array' }).min(1, 'documents must hold at least one document'),
  /** Return only the best N results. */
  top_n: z.number().int().positive().optional(),
  /** Echo each document's text in its result. */
  return_documents: z.boolean().default(false),
  /** Raw logits instead of the model's calibrated (activated) scores; same as activation "none". */
  raw_scores: z.boolean().default(false),
  /** Extension: "model" (default, the activation the model's config names), "sigmoid" or "none". */
  activation: z.enum(['model', 'sigmoid', 'none']).optional(),
  /** Cut documents that do not fit (true) or refuse them (false); default AUTO_TRUNCATE. */
  truncate: z.boolean().optional(),
  /** Cohere v2: cut each document to at most this many tokens. */
  max_tokens_per_doc: z.number().int().positive().optional(),
});

/** Answer of POST /v1/rerank: results best first; `meta` is Cohere's, `object` llama.cpp's. */
export const rerankResponseSchema = z.object({
  id: z.string(),
  object: z.literal('list'),
  model: z.string(),
  results: z.array(z.object({
    index: z.number().int(),
    relevance_score: z.number(),
    document: z.object({ text: z.string() }).optional(),
  })),
  usage: z.object({ prompt_tokens: z.number().int(), total_tokens: z.number().int() }),
  meta: z.object({ api_version: z.object({ version: z.string() }), billed_units: z.object({ search_units: z.number().int() }) }),
});

/** The answer's type. */
export type RerankResponse = z.output<typeof rerankResponseSchema>;
