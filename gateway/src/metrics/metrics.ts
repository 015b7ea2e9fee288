import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048];
const TOKEN_BUCKETS = [16, 64, 256, 1024, 4096, 16_384, 65_536, 262_144];

/**
 * Every metric the gateway exports, in one registry. Names follow Prometheus conventions:
 * base units (seconds), `_total` for counters, and labels for what varies.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    /** Finished HTTP requests by route, model and status code. */
    requests: new Counter({
      name: 'http_requests_total', help: 'HTTP requests by route, model and status.',
      labelNames: ['route', 'model', 'status'] as const, registers,
    }),
    /** End-to-end time of a request inside the gateway. */
    requestSeconds: new Histogram({
      name: 'http_request_duration_seconds', help: 'Time from request to response.',
      labelNames: ['route', 'model'] as const, buckets: LATENCY_BUCKETS, registers,
    }),
    /** Time a request's inputs waited before their first runner call. */
    queueSeconds: new Histogram({
      name: 'embedding_queue_seconds', help: 'Time from admission to the first runner call.',
      labelNames: ['model'] as const, buckets: LATENCY_BUCKETS, registers,
    }),
    /** Duration of runner calls, seen from the gateway. */
    inferenceSeconds: new Histogram({
      name: 'embedding_inference_seconds', help: 'Runner call duration seen by the gateway.',
      labelNames: ['model'] as const, buckets: LATENCY_BUCKETS, registers,
    }),
    /** Tokenise-and-forward time reported by the runner itself, per call. */
    runnerComputeSeconds: new Histogram({
      name: 'runner_compute_seconds', help: 'Compute time the runner reports per call.',
      labelNames: ['model'] as const, buckets: LATENCY_BUCKETS, registers,
    }),
    /** Inputs per runner call. */
    batchInputs: new Histogram({
      name: 'embedding_batch_size_inputs', help: 'Inputs per runner call.',
      labelNames: ['model'] as const, buckets: SIZE_BUCKETS, registers,
    }),
    /** Tokens per runner call, as the runner counted them. */
    batchTokens: new Histogram({
      name: 'embedding_batch_size_tokens', help: 'Tokens per runner call.',
      labelNames: ['model'] as const, buckets: TOKEN_BUCKETS, registers,
    }),
    /** Runner calls made, by outcome. */
    runnerCalls: new Counter({
      name: 'runner_calls_total', help: 'Runner Embed calls by outcome.',
      labelNames: ['model', 'outcome'] as const, registers,
    }),
    /** Requests waiting for a runner. */
    queueDepth: new Gauge({
      name: 'embedding_queue_depth', help: 'Requests waiting for a runner.',
      labelNames: ['model'] as const, registers,
    }),
    /** Requests refused by admission control (queue_full, queue_timeout), past their deadline, or failed for one bad input (its code). */
    rejected: new Counter({
      name: 'embedding_rejected_total', help: 'Requests refused by admission control or deadlines, or failed for one bad input, by reason.',
      labelNames: ['model', 'reason'] as const, registers,
    }),
    /** 1 while a runner is ready. `runner` numbers a model's runners in MODEL_DEVICE order, which may name one device twice. */
    runnerUp: new Gauge({
      name: 'runner_up', help: '1 while the runner is ready to serve.',
      labelNames: ['model', 'device', 'runner'] as const, registers,
    }),
    /** 1 while a runner that kept failing is held down (see /health for the reason). */
    runnerHeldDown: new Gauge({
      name: 'runner_held_down', help: '1 while the runner is held down after failing repeatedly without serving.',
      labelNames: ['model', 'device', 'runner'] as const, registers,
    }),
    /** Runner restarts after a crash or hang. */
    runnerRestarts: new Counter({
      name: 'runner_restarts_total', help: 'Runner restarts after a crash or hang.',
      labelNames: ['model', 'device', 'runner'] as const, registers,
    }),
    /** Requests answered with a 4xx or 503, by status and error code; their log lines are rate-limited. */
    rejectedRequests: new Counter({
      name: 'http_rejected_requests_total', help: 'Requests answered with a client error, 429 or 503, by status and code.',
      labelNames: ['status', 'code'] as const, registers,
    }),
    /** Log lines for rejected requests left out by the rate limit. */
    suppressedLogLines: new Counter({
      name: 'log_lines_suppressed_total', help: 'Rejected-request log lines left out by REJECTED_LOG_LINES_PER_MINUTE.',
      registers,
    }),
    /** Inputs answered from the cache. */
    cacheHits: new Counter({
      name: 'embedding_cache_hits_total', help: 'Inputs answered from the embedding cache.',
      labelNames: ['model'] as const, registers,
    }),
    /** Model loads: on first use, after an unload, or at boot. */
    modelLoads: new Counter({
      name: 'model_loads_total', help: 'Model loads by outcome (ok, error).',
      labelNames: ['model', 'outcome'] as const, registers,
    }),
    /** How long a model took from its load starting to its runners serving. */
    modelLoadSeconds: new Histogram({
      name: 'model_load_duration_seconds', help: 'Time to start a model\'s runners, warmup included.',
      labelNames: ['model'] as const, buckets: [0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320], registers,
    }),
    /** Models stopped, by why: idle past its keep-alive, room for another, or an admin call. */
    modelUnloads: new Counter({
      name: 'model_unloads_total', help: 'Model unloads by reason (idle, budget, admin).',
      labelNames: ['model', 'reason'] as const, registers,
    }),
    /** Resident memory of each model's runners; set at every scrape (see ModelRegistry). */
    modelMemory: new Gauge({
      name: 'model_resident_memory_bytes', help: 'Resident memory of the model\'s runner processes; 0 while unloaded.',
      labelNames: ['model'] as const, registers,
    }),
    /** Inputs that had to be computed. */
    cacheMisses: new Counter({
      name: 'embedding_cache_misses_total', help: 'Inputs not found in the embedding cache.',
      labelNames: ['model'] as const, registers,
    }),
  };
}

/** The gateway's metrics; created once in main and passed to whoever records. */
export type Metrics = ReturnType<typeof createMetrics>;
