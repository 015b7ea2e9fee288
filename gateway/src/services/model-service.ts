import type { CatalogEntry } from '../config/catalog.ts';
import { ApiError } from '../errors.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { RunnerInfo } from '../runners/runner-client.ts';
import type { SupervisedRunner } from '../runners/supervisor.ts';
import { Batcher, type BatcherOptions, type CallSpec } from './batcher.ts';
import { denseSpec, multiVectorSpec, rerankSpec, sparseSpec, type MultiVectorItem, type SparseItem } from './call-specs.ts';
import { EmbeddingCache } from './embedding-cache.ts';

/** Request-size guards and defaults, from the settings. */
export interface ServiceLimits {
  maxBatchSize: number;
  maxTextChars: number;
  /** Cut over-long inputs (true) or refuse them (false) when a request does not say. */
  autoTruncate: boolean;
}

/** Per-request context that travels with the inputs. */
export interface CallContext {
  requestId: string;
  /** Aborts when the client goes away; queued work for it is then dropped. */
  signal?: AbortSignal;
}

/** Per-request embedding choices; every field is optional. */
export interface EmbedChoices {
  /** A search query or a document: picks the model's default prompt. OpenAI requests are documents. */
  kind?: 'query' | 'document';
  /** One of the model's prompts, overriding the default for the kind. */
  promptName?: string;
  /** Matryoshka size for dense vectors. */
  dimensions?: number;
  /** Overrides AUTO_TRUNCATE for this request. */
  truncate?: boolean;
}

/** Results for one request, aligned with its inputs. */
export interface Outcome<T> {
  items: T[];
  tokens: number[];
  cacheHits: number;
  queueMs: number;
  inferenceMs: number;
}

/** The capability each output needs, as runners report them in Info. */
const NEEDS = { dense: 'text-embedding', sparse: 'sparse-embedding', multi: 'multi-vector', rerank: 'rerank' } as const;

/**
 * Everything the gateway does for one model: guards, cache, then admission and batching.
 * Routes call this with plain inputs and get results back; they hold no policy of their own.
 */
export class ModelService {
  readonly name: string;
  readonly runners: SupervisedRunner[];
  readonly #entry: CatalogEntry;
  readonly #limits: ServiceLimits;
  readonly #cache: EmbeddingCache;
  readonly #batcher: Batcher;
  readonly #metrics: Metrics;

  constructor(entry: CatalogEntry, runners: SupervisedRunner[], limits: ServiceLimits, cacheSize: number, batching: BatcherOptions, metrics: Metrics) {
    this.name = entry.name;
    this.runners = runners;
    this.#entry = entry;
    this.#limits = limits;
    this.#cache = new EmbeddingCache(cacheSize);
    this.#batcher = new Batcher(entry.name, runners, batching, metrics);
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

  /** Dense vectors as little-endian float32 rows. */
  embedDense(texts: string[], choices: EmbedChoices, ctx: CallContext): Promise<Outcome<Buffer>> {
    this.#checkLimits(texts, 'input');
    const info = this.#require('dense');
    const dimensions = this.#dimensions(info, choices.dimensions);
    const options = { prompt_name: this.#prompt(choices), dimensions, refuse_long: !this.#truncate(choices) };
    return this.#cached(texts, denseSpec(options), ctx);
  }

  /** Sparse lexical weights (bge-m3). */
  embedSparse(texts: string[], choices: EmbedChoices, ctx: CallContext): Promise<Outcome<SparseItem>> {
    this.#checkLimits(texts, 'input');
    this.#require('sparse');
    return this.#cached(texts, sparseSpec({ prompt_name: this.#prompt(choices), refuse_long: !this.#truncate(choices) }), ctx);
  }

  /** Per-token vectors (bge-m3 ColBERT). */
  embedMultiVector(texts: string[], choices: EmbedChoices, ctx: CallContext): Promise<Outcome<MultiVectorItem>> {
    this.#checkLimits(texts, 'input');
    this.#require('multi');
    return this.#cached(texts, multiVectorSpec({ prompt_name: this.#prompt(choices), refuse_long: !this.#truncate(choices) }), ctx);
  }

  /** Scores of each document against the query, in the documents' order. */
  async rerank(query: string, documents: string[], opts: { raw: boolean; truncate?: boolean }, ctx: CallContext): Promise<Outcome<number>> {
    this.#checkLimits(documents, 'documents');
    this.#checkLimits([query], 'query');
    this.#require('rerank');
    const spec = rerankSpec(query, { raw_scores: opts.raw, refuse_long: !this.#truncate(opts) });
    const out = await this.#batcher.submit(documents, spec, ctx.requestId, ctx.signal);
    return { ...out, cacheHits: 0 };
  }

  /** Cached inputs never reach a runner; identical inputs in one request are computed once. */
  async #cached<T>(texts: string[], spec: CallSpec<T>, ctx: CallContext): Promise<Outcome<T>> {
    const items: T[] = new Array(texts.length);
    const tokens: number[] = new Array(texts.length);
    const missIndex = new Map<string, number[]>();
    texts.forEach((text, i) => {
      const hit = this.#cache.get<T>(spec.key, text);
      if (hit) {
        items[i] = hit.value;
        tokens[i] = hit.tokens;
      } else {
        const slots = missIndex.get(text);
        if (slots) slots.push(i);
        else missIndex.set(text, [i]);
      }
    });
    const misses = [...missIndex.keys()];
    let missed = 0;
    for (const slots of missIndex.values()) missed += slots.length;
    const cacheHits = texts.length - missed;
    this.#metrics.cacheHits.inc({ model: this.name }, cacheHits);
    this.#metrics.cacheMisses.inc({ model: this.name }, missed);
    if (misses.length === 0) return { items, tokens, cacheHits, queueMs: 0, inferenceMs: 0 };

    const computed = await this.#batcher.submit(misses, spec, ctx.requestId, ctx.signal);
    misses.forEach((text, m) => {
      const value = computed.items[m]!;
      const count = computed.tokens[m]!;
      this.#cache.set(spec.key, text, value, count);
      for (const i of missIndex.get(text)!) {
        items[i] = value;
        tokens[i] = count;
      }
    });
    return { items, tokens, cacheHits, queueMs: computed.queueMs, inferenceMs: computed.inferenceMs };
  }

  /** The runner's facts, once it is known to offer this output; 503 while none is ready. */
  #require(output: keyof typeof NEEDS): RunnerInfo {
    const info = this.info;
    if (!this.ready || !info) {
      throw new ApiError('unavailable', `Model '${this.name}' is not ready; retry shortly.`, { retryAfterS: 2, code: 'model_unavailable' });
    }
    if (!info.capabilities.includes(NEEDS[output])) {
      const can = info.capabilities.join(', ');
      throw new ApiError('validation', `Model '${this.name}' cannot do ${NEEDS[output]}; it offers: ${can}.`, { param: 'model', code: 'unsupported_model_capability' });
    }
    return info;
  }

  /** 0 (full size) or a Matryoshka size the model supports; a 400 naming the sizes otherwise. */
  #dimensions(info: RunnerInfo, asked: number | undefined): number {
    if (asked === undefined || asked === info.dimensions) return 0;
    if (info.matryoshka_dims.includes(asked)) return asked;
    const sizes = [info.dimensions, ...info.matryoshka_dims].join(', ');
    throw new ApiError('validation', `Model '${this.name}' cannot return ${asked} dimensions; supported: ${sizes}.`, { param: 'dimensions', code: 'unsupported_dimensions' });
  }

  /** The prompt to use: the request's own, else the catalog's default for the request kind. */
  #prompt(choices: EmbedChoices): string {
    if (choices.promptName !== undefined) {
      const known = this.info?.prompt_names ?? [];
      if (!known.includes(choices.promptName)) {
        throw new ApiError('validation', `Model '${this.name}' has no prompt '${choices.promptName}'; its prompts: ${known.join(', ') || 'none'}.`, { param: 'prompt_name' });
      }
      return choices.promptName;
    }
    return this.#entry.default_prompts[choices.kind ?? 'document'] ?? '';
  }

  #truncate(choices: { truncate?: boolean }): boolean {
    return choices.truncate ?? this.#limits.autoTruncate;
  }

  #checkLimits(texts: string[], param: string): void {
    const { maxBatchSize, maxTextChars } = this.#limits;
    if (texts.length > maxBatchSize) {
      throw new ApiError('validation', `Too many inputs: ${texts.length} given, at most ${maxBatchSize} (MAX_BATCH_SIZE) allowed per request.`, { param, code: 'too_many_inputs' });
    }
    const long = texts.findIndex((t) => t.length > maxTextChars);
    if (long >= 0) {
      const where = param === 'query' ? 'query' : `${param}[${long}]`;
      throw new ApiError('validation', `${where} has ${texts[long]!.length} characters; at most ${maxTextChars} (MAX_TEXT_CHARS) are allowed.`, { param, code: 'input_too_long' });
    }
  }
}
