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
  /** unloaded (starts on its first request), loading, ready, unloading or failed. */
  state: z.enum(['unloaded', 'loading', 'ready', 'unloading', 'failed']),
  /** Why the model is not serving, when a load or its runner failed; else null. */
  reason: z.string().nullable(),
  /** The devices its runners run on (MODEL_DEVICE). */
  devices: z.array(z.string()),
  /** Resident memory of its runner processes now, in bytes; 0 while unloaded. */
  resident_memory_bytes: z.number().int(),
  /** When a request last finished with it (Unix seconds); null if none has. */
  last_used: z.number().int().nullable(),
  /** Seconds it stays loaded once idle; -1 forever (KEEP_ALIVE or the catalog's keep_alive). */
  keep_alive: z.number().int(),
  /** A pinned model is never unloaded for idleness or for room. */
  pinned: z.boolean(),
  /** What the weights run in: fp32 (PyTorch, the reference), bf16 or int8; null until the runner reports. */
  precision: z.string().nullable(),
  /** The backend behind the precision, e.g. "openvino int8 weights, bf16 activations". */
  precision_detail: z.string().nullable(),
  /** For a non-reference precision, how closely it matched fp32 at load (the fidelity gate); null for fp32. */
  fidelity: z.object({ mean_cosine: z.number(), worst_cosine: z.number(), top10_overlap: z.number() }).nullable(),
  /**
   * What each loaded runner measured a forward pass to cost at start, and what it chose from that
   * (runner/device_profile.py): one entry per ready runner, in MODEL_DEVICE order.
   */
  device_profiles: z.array(z.object({
    device: z.string(),
    /** Passes run on the host's cores (calls take turns, runners share the cores). */
    host_compute: z.boolean(),
    /** Fixed cost of one forward pass, in milliseconds. */
    pass_ms: z.number(),
    /** Cost of one more padded token, in microseconds. */
    token_us: z.number(),
    /** pass_ms in tokens' worth of compute, what the runner's length buckets weigh a pass at. */
    overhead_tokens: z.number().int(),
    /** Padded widths are rounded up to a multiple of this. */
    width_multiple: z.number().int(),
    /** Calls the runner computes at once. */
    concurrency: z.number().int(),
    /** The largest call worth making, in tokens. */
    call_tokens: z.number().int(),
    /** A lone pass of at most this many tokens, after the runner idled, runs on one thread (0: none). */
    single_thread_tokens: z.number().int(),
  })),
  /** For an entry of MODEL_ALIASES: the served model that answers for it; null for a served model. */
  alias_of: z.string().nullable(),
});

/** Answer of GET /v1/models. */
export const modelListSchema = z.object({ object: z.literal('list'), data: z.array(modelObjectSchema) });

/** The answer's type. */
export type ModelList = z.output<typeof modelListSchema>;
