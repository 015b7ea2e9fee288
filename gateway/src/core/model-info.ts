import type { RunnerInfo } from '../runners/runner-client.ts';
import type { SupervisedRunner } from '../runners/supervisor.ts';

/**
 * What the dialects know of a model once a runner has described it. It is the gateway's own
 * type, not the proto's InfoResponse, so that a change in the runner contract stops at core.
 */
export interface ModelInfo {
  /** Dense vector size; 0 for a model without dense output. */
  dimensions: number;
  /** Longest input the model reads, in tokens. */
  maxTokens: number;
  /** text-embedding, sparse-embedding, multi-vector, rerank or classify. */
  capabilities: string[];
  /** The torch dtype the weights run in, e.g. float32. */
  dtype: string;
  /** The model's own prompts, by name. */
  promptNames: string[];
  /** Sizes dense vectors may be cut to, besides the full size. */
  matryoshkaDims: number[];
  /** How token states are pooled into a vector (sentence-transformers' name); empty without dense output. */
  pooling: string;
  /** A classifier's labels in id order; empty otherwise. */
  labels: string[];
  /** fp32, bf16 or int8. */
  precision: string;
  /** The backend behind the precision. */
  precisionDetail: string;
  /** How closely a non-reference precision matched fp32 at load; null for fp32. */
  fidelity: { mean_cosine: number; worst_cosine: number; top10_overlap: number } | null;
  /** Calls the gateway sends one runner at once (MAX_CONCURRENT or the runner's profile). */
  concurrency: number;
}

/** What one forward pass costs on a runner's device, as it measured at start. */
export interface DeviceProfileView {
  host_compute: boolean;
  pass_ms: number;
  token_us: number;
  overhead_tokens: number;
  width_multiple: number;
  concurrency: number;
  call_tokens: number;
  single_thread_tokens: number;
}

/** One runner of a model, as health and the model list show it. */
export interface RunnerView {
  device: string;
  state: string;
  restarts: number;
  /** Why it is not ready, when it failed; absent otherwise. */
  reason: string | undefined;
  /** Its device profile while it is ready; null otherwise. */
  profile: DeviceProfileView | null;
}

/** The runner's Info in the gateway's terms. */
export function modelInfo(info: RunnerInfo, concurrency: number): ModelInfo {
  return {
    dimensions: info.dimensions,
    maxTokens: info.max_tokens,
    capabilities: info.capabilities,
    dtype: info.dtype,
    promptNames: info.prompt_names,
    matryoshkaDims: info.matryoshka_dims,
    pooling: info.pooling,
    labels: info.labels,
    precision: info.precision,
    precisionDetail: info.precision_detail,
    fidelity: info.fidelity ?? null,
    concurrency,
  };
}

/** A supervised runner in the gateway's terms. */
export function runnerView(r: SupervisedRunner): RunnerView {
  const p = r.state === 'ready' ? r.info?.profile : null;
  return {
    device: r.device,
    state: r.state,
    restarts: r.restarts,
    reason: r.reason,
    profile: p ? { host_compute: p.host_compute, pass_ms: p.pass_ms, token_us: p.token_us, overhead_tokens: p.overhead_tokens,
      width_multiple: p.width_multiple, concurrency: p.concurrency, call_tokens: p.call_tokens,
      single_thread_tokens: p.single_thread_tokens } : null,
  };
}
