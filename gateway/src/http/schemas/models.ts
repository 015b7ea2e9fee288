import { z } from 'zod';

/** One served model in GET /v1/models: OpenAI's model object plus the vector size. */
export const modelObjectSchema = z.object({
  id: z.string(),
  object: z.literal('model'),
  created: z.number().int(),
  owned_by: z.string(),
  /** Length of the vectors this model returns. */
  dimensions: z.number().int().nullable(),
  /** Most tokens per input; longer inputs are truncated. */
  max_tokens: z.number().int().nullable(),
  /** What the model can do: text-embedding, sparse-embedding, multi-vector, rerank. */
  capabilities: z.array(z.string()),
  /** The model's own prompts, usable as prompt_name. */
  prompt_names: z.array(z.string()),
  /** Sizes `dimensions` may ask for besides the full one. */
  matryoshka_dims: z.array(z.number().int()),
  /** True while at least one of its runners is ready. */
  ready: z.boolean(),
  /** What the weights run in: fp32 (PyTorch, the reference) or int8; null until the runner reports. */
  precision: z.string().nullable(),
  /** The backend behind the precision, e.g. "openvino int8 weights, bf16 activations". */
  precision_detail: z.string().nullable(),
  /** For a non-reference precision, how closely it matched fp32 at load (the fidelity gate); null for fp32. */
  fidelity: z.object({ mean_cosine: z.number(), worst_cosine: z.number(), top10_overlap: z.number() }).nullable(),
  /** For an entry of MODEL_ALIASES: the served model that answers for it; null for a served model. */
  alias_of: z.string().nullable(),
});

/** Answer of GET /v1/models. */
export const modelListSchema = z.object({ object: z.literal('list'), data: z.array(modelObjectSchema) });

/** The answer's type. */
export type ModelList = z.output<typeof modelListSchema>;
