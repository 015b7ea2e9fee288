import { ApiError } from '../errors.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { RunnerInfo } from '../runners/runner-client.ts';
import type { SupervisedRunner } from '../runners/supervisor.ts';
import { Batcher, type BatcherOptions } from './batcher.ts';
import { EmbeddingCache } from './embedding-cache.ts';

/** Request-size guards, from the settings. */
export interface InputLimits {
  maxBatchSize: number;
  maxTextChars: number;
}

/** Per-request context that travels with the inputs. */
export interface CallContext {
  requestId: string;
  /** Aborts when the client goes away; queued work for it is then dropped. */
  signal?: AbortSignal;
}

/** Vectors for one request, row-aligned with its inputs. */
export interface EmbedOutcome {
  /** Little-endian float32 bytes per input. */
  rows: Buffer[];
  tokens: number[];
  dimensions: number;
  cacheHits: number;
  queueMs: number;
  inferenceMs: number;
}

// Options that change the vector; none yet beyond the model itself.
const DEFAULT_VARIANT = '';

/**
 * Everything the gateway does for one model: guards, cache, then admission and batching.
 * Routes call this with plain texts and get vectors back; they hold no policy of their own.
 */
export class ModelService {
  readonly name: string;
  readonly runners: SupervisedRunner[];
  readonly #limits: InputLimits;
  readonly #cache: EmbeddingCache;
  readonly #batcher: Batcher;
  readonly #metrics: Metrics;

  constructor(name: string, runners: SupervisedRunner[], limits: InputLimits, cacheSize: number, batching: BatcherOptions, metrics: Metrics) {
    this.name = name;
    this.runners = runners;
    this.#limits = limits;
    this.#cache = new EmbeddingCache(cacheSize);
    this.#batcher = new Batcher(name, runners, batching, metrics);
    this.#metrics = metrics;
  }

  /** True when at least one runner can take calls. */
  get ready(): boolean {
    return this.runners.some((r) => r.state === 'ready');
  }

  /** Model facts from the runner (identical across this model's runners). */
  get info(): RunnerInfo | undefined {
    return this.runners.find((r) => r.info)?.info;
  }

  /** Embeds texts; cached inputs never reach a runner, and only the misses are computed. */
  async embed(texts: string[], ctx: CallContext): Promise<EmbedOutcome> {
    this.#checkLimits(texts);
    const info = this.info;
    if (!this.ready || !info) {
      throw new ApiError('unavailable', `Model '${this.name}' is not ready; retry shortly.`, { retryAfterS: 2, code: 'model_unavailable' });
    }
    const rows: Buffer[] = new Array(texts.length);
    const tokens: number[] = new Array(texts.length);
    // Identical inputs in one request are computed once.
    const missIndex = new Map<string, number[]>();
    texts.forEach((text, i) => {
      const hit = this.#cache.get(DEFAULT_VARIANT, text);
      if (hit) {
        rows[i] = hit.row;
        tokens[i] = hit.tokens;
      } else {
        const slots = missIndex.get(text);
        if (slots) slots.push(i);
        else missIndex.set(text, [i]);
      }
    });
    const misses = [...missIndex.keys()];
    const cacheHits = texts.length - [...missIndex.values()].reduce((n, s) => n + s.length, 0);
    this.#metrics.cacheHits.inc({ model: this.name }, cacheHits);
    this.#metrics.cacheMisses.inc({ model: this.name }, texts.length - cacheHits);

    let queueMs = 0;
    let inferenceMs = 0;
    if (misses.length > 0) {
      const computed = await this.#batcher.submit(misses, ctx.requestId, ctx.signal);
      ({ queueMs, inferenceMs } = computed);
      misses.forEach((text, m) => {
        const row = computed.rows[m]!;
        const count = computed.tokens[m]!;
        this.#cache.set(DEFAULT_VARIANT, text, row, count);
        for (const i of missIndex.get(text)!) {
          rows[i] = row;
          tokens[i] = count;
        }
      });
    }
    return { rows, tokens, dimensions: info.dimensions, cacheHits, queueMs, inferenceMs };
  }

  #checkLimits(texts: string[]): void {
    const { maxBatchSize, maxTextChars } = this.#limits;
    if (texts.length > maxBatchSize) {
      throw new ApiError('validation', `Too many inputs: ${texts.length} given, at most ${maxBatchSize} (MAX_BATCH_SIZE) allowed per request.`, { param: 'input', code: 'too_many_inputs' });
    }
    const long = texts.findIndex((t) => t.length > maxTextChars);
    if (long >= 0) {
      throw new ApiError('validation', `input[${long}] has ${texts[long]!.length} characters; at most ${maxTextChars} (MAX_TEXT_CHARS) are allowed.`, { param: 'input', code: 'input_too_long' });
    }
  }
}
