import { z } from 'zod';
import { text } from '../shared/fields.ts';
import { QUANTIZED_TYPES } from '../shared/quantize.ts';

/** Cohere's names for the kind of text; search_document is the default. */
export const cohereInputTypes = ['search_document', 'search_query', 'classification', 'clustering'] as const;

/** What Cohere's embedding_types may name: floats, the quantised forms, and base64 floats. */
export const cohereEmbeddingTypes = ['float', ...QUANTIZED_TYPES, 'base64'] as const;

/** Fields Cohere's v1 and v2 embed requests share. */
const common = {
  /** A served embedding model; without it, the default model answers. */
  model: z.string({ error: 'model must be a string' }).min(1, 'model must not be empty').optional(),
  /** The kind of text: picks the model's prompt (see docs/api.md). Cohere's "image" is refused: text only. */
  input_type: z.enum(cohereInputTypes, {
    error: (issue) => (issue.input === 'image' ? 'input_type image is not supported: this server embeds text only'
      : `input_type must be one of ${cohereInputTypes.join(', ')}`),
  }).default('search_document'),
  /** The forms to return; each is a key of the answer's `embeddings`. */
  embedding_types: z.array(z.enum(cohereEmbeddingTypes, { error: `each embedding type must be one of ${cohereEmbeddingTypes.join(', ')}` }))
    .min(1, 'embedding_types must name at least one type').optional(),
  /** Over-long inputs: END cuts their end (the default), START their start, NONE refuses them with a 400. */
  truncate: z.enum(['NONE', 'START', 'END'], { error: 'truncate must be NONE, START or END' }).default('END'),
  /** Image inputs; only an empty list is accepted, since the served models embed text. */
  images: z.array(z.unknown()).max(0, 'images are not supported: this server embeds text only').optional(),
};

const texts = z.array(text, { error: 'texts must be an array of strings' }).min(1, 'texts must hold at least one text');

/** Body of POST /v1/embed, Cohere's v1 embed API. */
export const cohereEmbedV1RequestSchema = z.object({
  /** The texts to embed. */
  texts,
  ...common,
});

/** One part of a v2 `inputs` entry, read as its text; image parts are refused. */
const contentPart = z.object({
  type: z.enum(['text', 'image_url'], { error: 'each content part\'s type must be "text"' }),
  text: text.optional(),
}).superRefine((part, ctx) => {
  if (part.type === 'image_url') ctx.addIssue({ code: 'custom', path: ['type'], message: 'image_url content is not supported: this server embeds text only' });
  else if (part.text === undefined) ctx.addIssue({ code: 'custom', path: ['text'], message: 'a text part needs its text' });
}).transform((part) => part.text!);

/** Body of POST /v2/embed, Cohere's v2 embed API. */
export const cohereEmbedV2RequestSchema = z.object({
  /** The texts to embed; give either this or `inputs`. */
  texts: texts.optional(),
  /** v2's structured inputs: each one's text parts are joined with a newline into one text. */
  inputs: z.array(z.object({ content: z.array(contentPart).min(1, 'content must hold at least one part') }),
    { error: 'inputs must be an array of {"content": [...]}' }).min(1, 'inputs must hold at least one input').optional(),
  ...common,
  /** Which forms to return; Cohere v2 answers floats when none are named. */
  embedding_types: common.embedding_types.default(['float']),
  /** Matryoshka size of the vectors: the model's own or one of its matryoshka_dims (GET /v1/models). */
  output_dimension: z.number().int().positive().optional(),
  /** Token cap per input; only the model's own limit or more is accepted (a smaller cap is refused). */
  max_tokens: z.number().int().positive().optional(),
  /** Cohere's scheduling hint; accepted and ignored, as every request here is served in arrival order. */
  priority: z.number().int().optional(),
}).superRefine((body, ctx) => {
  if ((body.texts === undefined) === (body.inputs === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['texts'], message: 'give exactly one of texts and inputs' });
  }
});

const intRows = z.array(z.array(z.number().int()));

/** Cohere's `embeddings` object: one list per requested type, each aligned with the texts. */
const cohereEmbeddingsByTypeSchema = z.object({
  float: z.array(z.array(z.number())).optional(),
  int8: intRows.optional(),
  uint8: intRows.optional(),
  binary: intRows.optional(),
  ubinary: intRows.optional(),
  /** Each vector's little-endian float32 bytes, base64-encoded. */
  base64: z.array(z.string()).optional(),
});

/** The answer's `embeddings` in the by-type form. */
export type CohereEmbeddingsByType = z.output<typeof cohereEmbeddingsByTypeSchema>;

/** Cohere's `meta`: the API version and the tokens embedded. */
const meta = z.object({
  api_version: z.object({ version: z.string() }),
  billed_units: z.object({ input_tokens: z.number().int() }),
});

/** Answer of POST /v1/embed without embedding_types, and of Cohere's older clients. */
const cohereEmbedFloatsResponseSchema = z.object({
  id: z.string(),
  response_type: z.literal('embeddings_floats'),
  embeddings: z.array(z.array(z.number())),
  texts: z.array(z.string()),
  meta,
});

/** Answer of POST /v2/embed, and of POST /v1/embed with embedding_types. */
export const cohereEmbedByTypeResponseSchema = z.object({
  id: z.string(),
  response_type: z.literal('embeddings_by_type'),
  embeddings: cohereEmbeddingsByTypeSchema,
  texts: z.array(z.string()),
  meta,
});

/** Answer of POST /v1/embed: floats alone, or by type when embedding_types was given. */
export const cohereEmbedV1ResponseSchema = z.union([cohereEmbedFloatsResponseSchema, cohereEmbedByTypeResponseSchema]);

/** The v1 answer's type. */
export type CohereEmbedV1Response = z.output<typeof cohereEmbedV1ResponseSchema>;

/** The v2 answer's type. */
export type CohereEmbedByTypeResponse = z.output<typeof cohereEmbedByTypeResponseSchema>;
