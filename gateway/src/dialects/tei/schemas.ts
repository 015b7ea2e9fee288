import { z } from 'zod';
import { embeddingExtensions, text, tokenIds } from '../shared/fields.ts';
import { predictionSchema } from '../shared/predictions.ts';

/** TEI's Input: a text or the model's own token ids, or a list of either kind (not both mixed). */
const inputs = z.union([text, tokenIds, z.array(text).min(1), z.array(tokenIds).min(1)], {
  error: (issue) => (issue.input === undefined ? 'inputs is required'
    : 'inputs must be a non-empty string, an array of token ids, or an array of either (one kind per request)'),
});

/** The served model to use (our extension; TEI serves one). Default: see model selection in docs/api.md. */
const model = z.string().min(1).optional();

/** Options every TEI embedding route shares. */
const embedOptions = {
  inputs,
  model,
  truncate: embeddingExtensions.truncate,
  truncation_direction: embeddingExtensions.truncation_direction,
  prompt_name: embeddingExtensions.prompt_name,
  /** Extension: which tokenizer wrote token-id inputs. Default `model`, as in TEI. */
  tokenizer: embeddingExtensions.tokenizer,
};

/** Body of TEI's POST /embed (and of POST / for an embedding model). */
export const teiEmbedRequestSchema = z.object({
  ...embedOptions,
  normalize: z.boolean().default(true),
  dimensions: z.number().int().positive().optional(),
});

/** Body of TEI's POST /embed_sparse. */
export const teiEmbedSparseRequestSchema = z.object(embedOptions);

/** Body of TEI's POST /embed_all: one vector per token, before pooling. */
export const teiEmbedAllRequestSchema = z.object(embedOptions);

/** Answer of TEI's POST /embed_all: per input, one vector per token. */
export const teiEmbedAllResponseSchema = z.array(z.array(z.array(z.number())));

/** Body of TEI's POST /similarity (the Hub's sentence-similarity task). */
export const teiSimilarityRequestSchema = z.object({
  inputs: z.object({
    /** What the sentences are compared with. */
    source_sentence: text,
    sentences: z.array(text).min(1, 'sentences must hold at least one sentence'),
  }, { error: 'inputs must be {"source_sentence": "...", "sentences": ["..."]}' }),
  parameters: z.object({
    prompt_name: embeddingExtensions.prompt_name,
    truncate: embeddingExtensions.truncate,
    truncation_direction: embeddingExtensions.truncation_direction,
  }).optional(),
  model,
});

/** Answer of TEI's POST /similarity: the cosine of each sentence with the source sentence. */
export const teiSimilarityResponseSchema = z.array(z.number());

/** Body of TEI's POST /rerank. */
export const teiRerankRequestSchema = z.object({
  query: z.string().min(1, 'query must not be empty'),
  texts: z.array(z.string().min(1)).min(1, 'texts must hold at least one text'),
  model,
  raw_scores: z.boolean().default(false),
  return_text: z.boolean().default(false),
  truncate: z.boolean().optional(),
  /** Which end of an over-long document is cut; the query keeps its room either way. */
  truncation_direction: embeddingExtensions.truncation_direction,
  /** Only the best N, as llama.cpp's TEI-shaped route allows; TEI itself returns all. */
  top_n: z.number().int().positive().optional(),
});

/** Answer of TEI's POST /rerank: best first. */
export const teiRerankResponseSchema = z.array(z.object({ index: z.number().int(), score: z.number(), text: z.string().optional() }));

/** Body of POST /tokenize in TEI's shape. */
export const teiTokenizeRequestSchema = z.object({
  inputs: z.union([z.string(), z.array(z.string()).min(1)]),
  model,
  add_special_tokens: z.boolean().default(true),
});

/** Answer of TEI's POST /tokenize: spans are UTF-8 byte offsets, null for special tokens. */
export const teiTokenizeResponseSchema = z.array(z.array(z.object({
  id: z.number().int(),
  text: z.string(),
  special: z.boolean(),
  start: z.number().int().nullable(),
  stop: z.number().int().nullable(),
})));

/** Body of TEI's POST /decode. */
export const teiDecodeRequestSchema = z.object({
  ids: z.union([tokenIds, z.array(tokenIds).min(1)]),
  model,
  skip_special_tokens: z.boolean().default(true),
});

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
  truncate: embeddingExtensions.truncate,
  truncation_direction: embeddingExtensions.truncation_direction,
});

/** Answer of TEI's POST /predict: best first; one list for one input, a list of lists for a batch. */
export const teiPredictResponseSchema = z.union([z.array(predictionSchema), z.array(z.array(predictionSchema))]);

/** The answer of TEI's /predict. */
export type TeiPredictResponse = z.output<typeof teiPredictResponseSchema>;

/** A classifier's labels as TEI's Info describes them. */
const classifierModel = z.object({ id2label: z.record(z.string(), z.string()), label2id: z.record(z.string(), z.number().int()) });

/** Answer of TEI's GET /info, valid against TEI's own Info schema, plus `models` (ours). */
export const teiInfoSchema = z.object({
  model_id: z.string(),
  model_sha: z.string().nullable(),
  model_dtype: z.string(),
  model_type: z.union([
    z.object({ embedding: z.object({ pooling: z.string() }) }),
    z.object({ reranker: classifierModel }),
    z.object({ classifier: classifierModel }),
  ]),
  max_concurrent_requests: z.number().int(),
  max_input_length: z.number().int(),
  max_batch_tokens: z.number().int(),
  max_batch_requests: z.number().int().nullable(),
  max_client_batch_size: z.number().int(),
  auto_truncate: z.boolean(),
  tokenization_workers: z.number().int(),
  version: z.string(),
  sha: z.string().nullable(),
  docker_label: z.string().nullable(),
  /** Name clients send as `model`; with several models served, the one /info describes. */
  served_model_name: z.string(),
  /** Every served model (ours; TEI serves one). */
  models: z.array(z.string()),
});

/** The answer's type. */
export type TeiInfo = z.output<typeof teiInfoSchema>;
