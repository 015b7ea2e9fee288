import type { CatalogEntry } from '../config/catalog.ts';
import type { RequestTrace } from '../tracing/spans.ts';
import { ApiError, InputError } from '../errors.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { runnerLimits } from '../runners/device-policy.ts';
import type { RunnerInfo } from '../runners/runner-client.ts';
import type { SupervisedRunner } from '../runners/supervisor.ts';
import { Batcher, type BatcherOptions, type BatchResult, type CallSpec } from './batcher.ts';
import {
  classifySpec, denseSpec, detokenizeSpec, multiVectorSpec, rerankSpec, sparseSpec, tokenizeSpec,
  type ClassifyText, type ClassItem, type EmbedInput, type InputKind, type MultiVectorItem, type SparseItem, type TokenItem,
} from './call-specs.ts';
import { EmbeddingCache } from './embedding-cache.ts';
import { modelInfo, runnerView, type ModelInfo, type RunnerView } from './model-info.ts';
import type { ModelLifecycle } from './model-lifecycle.ts';
import { decodeOpenAiTokens, type TokenIdVocabulary } from './tiktoken.ts';

/** Request-size guards and defaults, from the settings. */
export interface ServiceLimits {
  maxBatchSize: number;
  maxTextChars: number;
  /** Cut over-long inputs (true) or refuse them (false) when a request does not say. */
  autoTruncate: boolean;
  /** How token-id inputs are read when a request does not say. */
  tokenIdVocabulary: TokenIdVocabulary;
}

/** Inputs as clients send them: texts, or sequences of token ids. */
export type Inputs = string[] | number[][];

/** How a request names its inputs in errors: the top-level field, and the path of input i. */
export interface InputNames {
  param: string;
  name: (index: number) => string;
}

/** OpenAI's naming, the default: `input`, `input[3]`. */
const INPUT: InputNames = { param: 'input', name: (i) => `input[${i}]` };

/** Per-request context that travels with the inputs. */
export interface CallContext {
  requestId: string;
  /** Aborts when the client goes away; queued work for it is then dropped. */
  signal?: AbortSignal;
  /** The request's trace id and span, for its runner calls' log lines and spans. */
  trace?: RequestTrace;
  /** The dialect's names for the inputs (TEI's `inputs`, Cohere's `texts`); default INPUT. */
  inputs?: InputNames;
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
  /** Cut over-long inputs at the start instead of the end. */
  truncateLeft?: boolean;
  /** false returns dense vectors before the model's final normalisation. */
  normalize?: boolean;
  /** llama.cpp's embd_normalize, which the runner applies instead of the model's own normalisation. */
  norm?: number;
  /** How to read token-id inputs; overrides TOKEN_ID_INPUTS. */
  tokenIds?: TokenIdVocabulary;
}

/** How a rerank call scores: raw logits or calibrated, and how over-long documents are cut or refused. */
export interface RerankChoices {
  /** model: the activation the model's config names; none: the raw logit; sigmoid: a sigmoid whatever the model names. */
  activation: 'model' | 'none' | 'sigmoid';
  truncate?: boolean;
  /** Cohere's max_tokens_per_doc: a cap below the model's own room for each document. */
  maxDocTokens?: number;
  /** Cut documents at their start (TEI's truncation_direction Left). */
  truncateLeft?: boolean;
}

/** Tokens a request used in all, special tokens and prompts included: what usage reports. */
export function totalTokens(out: { tokens: number[] }): number {
  return out.tokens.reduce((a, b) => a + b, 0);
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
const NEEDS = { dense: 'text-embedding', sparse: 'sparse-embedding', multi: 'multi-vector', rerank: 'rerank', classify: 'classify' } as const;

/**
 * Everything the gateway does for one model: guards, cache, then admission and batching.
 * Routes call this with plain inputs and get results back; they hold no policy of their own.
 */
export class ModelService {
  readonly name: string;
  readonly runners: SupervisedRunner[];
  /** Loads the model on demand and stops it when idle. */
  readonly lifecycle: ModelLifecycle;
  readonly #entry: CatalogEntry;
  readonly #limits: ServiceLimits;
  readonly #cache: EmbeddingCache;
  readonly #batcher: Batcher;
  readonly #metrics: Metrics;
  readonly #batching: BatcherOptions;
  /** The last runner Info converted, and what it became. */
  #described: [RunnerInfo, ModelInfo] | undefined;

  constructor(entry: CatalogEntry, runners: SupervisedRunner[], lifecycle: ModelLifecycle, limits: ServiceLimits, cacheSize: number,
    batching: BatcherOptions, metrics: Metrics) {
    this.name = entry.name;
    this.runners = runners;
    this.lifecycle = lifecycle;
    this.#entry = entry;
    this.#limits = limits;
    this.#cache = new EmbeddingCache(cacheSize);
    this.#batcher = new Batcher(entry.name, runners, batching, metrics);
    this.#metrics = metrics;
    this.#batching = batching;
  }

  /** True when at least one runner can take calls (a probing one may, once it answers). */
  get ready(): boolean {
    return this.runners.some((r) => r.state === 'ready' || r.state === 'probing');
  }

  /** Model facts from the runner (identical across this model's runners); undefined until one has started. */
  get info(): ModelInfo | undefined {
    const info = this.runners.find((r) => r.info)?.info;
    if (!info) return undefined;
    if (this.#described?.[0] !== info) this.#described = [info, modelInfo(info, runnerLimits(info, this.#batching).concurrency)];
    return this.#described[1];
  }

  /** Each runner's device, state and profile, as health and the model list show them. */
  get runnerViews(): RunnerView[] {
    return this.runners.map(runnerView);
  }

  /** Dense vectors as little-endian float32 rows. */
  embedDense(inputs: Inputs, choices: EmbedChoices, ctx: CallContext): Promise<Outcome<Buffer>> {
    return this.#hold(inputs, ctx, () => {
      this.#require('dense');
      const [prepared, kind] = this.#inputs(inputs, choices);
      // The runner refuses a size the model does not offer, naming the sizes it does.
      const options = { ...this.#options(choices, kind), dimensions: choices.dimensions ?? 0, no_normalize: choices.normalize === false, norm: choices.norm };
      return this.#cached(prepared, denseSpec(options, kind), ctx);
    });
  }

  /** Sparse lexical weights (bge-m3). */
  embedSparse(inputs: Inputs, choices: EmbedChoices, ctx: CallContext): Promise<Outcome<SparseItem>> {
    return this.#hold(inputs, ctx, () => {
      this.#require('sparse');
      const [prepared, kind] = this.#inputs(inputs, choices);
      return this.#cached(prepared, sparseSpec(this.#options(choices, kind), kind), ctx);
    });
  }

  /** Per-token vectors (bge-m3 ColBERT). */
  embedMultiVector(inputs: Inputs, choices: EmbedChoices, ctx: CallContext): Promise<Outcome<MultiVectorItem>> {
    return this.#hold(inputs, ctx, () => {
      this.#require('multi');
      const [prepared, kind] = this.#inputs(inputs, choices);
      return this.#cached(prepared, multiVectorSpec(this.#options(choices, kind), kind), ctx);
    });
  }

  /** The encoder's state for every token before pooling (TEI's /embed_all); any embedding model has it. */
  embedTokens(inputs: Inputs, choices: EmbedChoices, ctx: CallContext): Promise<Outcome<MultiVectorItem>> {
    return this.#hold(inputs, ctx, () => {
      this.#require('dense');
      const [prepared, kind] = this.#inputs(inputs, choices);
      return this.#cached(prepared, multiVectorSpec(this.#options(choices, kind), kind, 'TOKEN_EMBEDDINGS'), ctx);
    });
  }

  /** Scores of each document against the query, in the documents' order. */
  rerank(query: string, documents: string[], opts: RerankChoices, ctx: CallContext): Promise<Outcome<number>> {
    const docs = { ...ctx, inputs: { param: 'documents', name: (i: number) => `documents[${i}]` } };
    this.#checkLimits([query], { param: 'query', name: () => 'query' });
    return this.#hold(documents, docs, async () => {
      this.#require('rerank');
      const spec = rerankSpec(query, {
        raw_scores: opts.activation === 'none', sigmoid: opts.activation === 'sigmoid', refuse_long: !this.#truncate(opts),
        max_doc_tokens: opts.maxDocTokens ?? 0, truncate_left: opts.truncateLeft === true,
      });
      return { ...(await this.#submit(documents, spec, docs)), cacheHits: 0 };
    });
  }

  /** Scores of every label of a classifier for each text or (text, text_pair) pair, in input order. */
  classify(inputs: ClassifyText[], opts: { raw: boolean; truncate?: boolean; truncateLeft?: boolean }, ctx: CallContext): Promise<Outcome<ClassItem>> {
    // A pair's two texts count together against MAX_TEXT_CHARS, as TEI counts them.
    return this.#hold(inputs.map((x) => (typeof x === 'string' ? x : x[0] + x[1])), ctx, async () => {
      const info = this.#require('classify');
      const spec = classifySpec({ raw_scores: opts.raw, refuse_long: !this.#truncate(opts), truncate_left: opts.truncateLeft === true }, info.labels);
      return { ...(await this.#submit(inputs, spec, ctx)), cacheHits: 0 };
    });
  }

  /** The model's tokenisation of each text. */
  tokenize(texts: string[], addSpecialTokens: boolean, ctx: CallContext): Promise<Outcome<TokenItem[]>> {
    return this.#hold(texts, ctx, async () => {
      this.#require(undefined);
      return { ...(await this.#submit(texts, tokenizeSpec(addSpecialTokens), ctx)), cacheHits: 0 };
    });
  }

  /** Text for each sequence of the model's token ids. */
  detokenize(sequences: number[][], skipSpecialTokens: boolean, ctx: CallContext): Promise<Outcome<string>> {
    return this.#hold(sequences, ctx, async () => {
      // The runner refuses ids outside the model's vocabulary, each sequence on its own.
      this.#require(undefined);
      return { ...(await this.#submit(sequences, detokenizeSpec(skipSpecialTokens), ctx)), cacheHits: 0 };
    });
  }

  /**
   * Checks the request's size, then holds the model (loading it if needed) while work runs.
   * Size comes first, so an oversized request is a 400 even while the model is not loaded.
   */
  async #hold<T>(inputs: Inputs, ctx: CallContext, work: () => Promise<T>): Promise<T> {
    this.#checkLimits(inputs, ctx.inputs ?? INPUT);
    const release = await this.lifecycle.acquire();
    try {
      return await work();
    } finally {
      release();
    }
  }

  /**
   * Submits inputs to the batcher. An input the runner refused fails this request alone, named
   * by its position in the client's request: `position` maps a submitted index back to it.
   */
  async #submit<T, I>(inputs: I[], spec: CallSpec<T, I>, ctx: CallContext,
    position: (submitted: number) => number = (i) => i): Promise<BatchResult<T>> {
    try {
      return await this.#batcher.submit(inputs, spec, ctx.requestId, ctx.signal, ctx.trace);
    } catch (err) {
      const { param, name } = ctx.inputs ?? INPUT;
      throw err instanceof InputError ? err.forClient(param, position(err.index), name) : err;
    }
  }

  /** Texts as they are, OpenAI token ids decoded to their texts, or the model's own ids. */
  #inputs(inputs: Inputs, choices: EmbedChoices): [EmbedInput[], InputKind] {
    if (typeof inputs[0] === 'string') return [inputs as string[], 'texts'];
    const sequences = inputs as number[][];
    const vocabulary = choices.tokenIds ?? this.#limits.tokenIdVocabulary;
    if (vocabulary !== 'model') return [decodeOpenAiTokens(sequences, vocabulary), 'texts'];
    // Ids of the model's own vocabulary go as sent; the runner refuses any outside it.
    return [sequences, 'ids'];
  }

  #options(choices: EmbedChoices, kind: InputKind) {
    return {
      // Prompts are text; ids of the model's vocabulary are used exactly as sent.
      prompt_name: kind === 'texts' ? this.#prompt(choices) : '',
      refuse_long: !this.#truncate(choices),
      truncate_left: choices.truncateLeft === true,
    };
  }

  /** Cached inputs never reach a runner; identical inputs in one request are computed once. */
  async #cached<T>(texts: EmbedInput[], spec: CallSpec<T, EmbedInput>, ctx: CallContext): Promise<Outcome<T>> {
    const items: T[] = new Array(texts.length);
    const tokens: number[] = new Array(texts.length);
    const missIndex = new Map<string, number[]>();
    const byKey = new Map<string, EmbedInput>();
    texts.forEach((input, i) => {
      // Token-id inputs are keyed by their ids; the spec key already says which kind it is.
      const text = typeof input === 'string' ? input : input.join(',');
      const hit = this.#cache.get<T>(spec.key, text);
      if (hit) {
        items[i] = hit.value;
        tokens[i] = hit.tokens;
      } else {
        const slots = missIndex.get(text);
        if (slots) slots.push(i);
        else missIndex.set(text, [i]);
        byKey.set(text, input);
      }
    });
    const misses = [...missIndex.keys()];
    let missed = 0;
    for (const slots of missIndex.values()) missed += slots.length;
    const cacheHits = texts.length - missed;
    this.#metrics.cacheHits.inc({ model: this.name }, cacheHits);
    this.#metrics.cacheMisses.inc({ model: this.name }, missed);
    if (misses.length === 0) return { items, tokens, cacheHits, queueMs: 0, inferenceMs: 0 };

    // Duplicates and cache hits are not submitted; an error names the input's first position.
    const computed = await this.#submit(misses.map((k) => byKey.get(k)!), spec, ctx, (m) => missIndex.get(misses[m]!)![0]!);
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

  /** Checks that the model is ready and offers this output; returns the runner's facts. */
  #require(output: keyof typeof NEEDS | undefined): ModelInfo {
    const info = this.info;
    if (!this.ready || !info) {
      const why = this.lifecycle.reason;
      throw new ApiError('unavailable', `Model '${this.name}' is not ready${why ? ` (runner ${why})` : ''}; retry shortly.`,
        { retryAfterS: 2, code: 'model_unavailable' });
    }
    if (output && !info.capabilities.includes(NEEDS[output])) {
      const can = info.capabilities.join(', ');
      throw new ApiError('validation', `Model '${this.name}' cannot do ${NEEDS[output]}; it offers: ${can}.`, { param: 'model', code: 'unsupported_model_capability' });
    }
    return info;
  }

  /** The request's own prompt (the runner refuses one the model lacks), else the catalog's default for the request kind. */
  #prompt(choices: EmbedChoices): string {
    return choices.promptName ?? this.#entry.default_prompts[choices.kind ?? 'document'] ?? '';
  }

  #truncate(choices: { truncate?: boolean }): boolean {
    return choices.truncate ?? this.#limits.autoTruncate;
  }

  #checkLimits(texts: Inputs, { param, name }: InputNames): void {
    const { maxBatchSize, maxTextChars } = this.#limits;
    if (texts.length > maxBatchSize) {
      throw new ApiError('validation', `Too many inputs: ${texts.length} given, at most ${maxBatchSize} (MAX_BATCH_SIZE) allowed per request.`, { param, code: 'too_many_inputs' });
    }
    // Token-id inputs are bounded by the same number, counted in tokens.
    const long = texts.findIndex((t) => t.length > maxTextChars);
    if (long >= 0) {
      const where = name(long);
      const unit = typeof texts[long] === 'string' ? 'characters' : 'tokens';
      throw new ApiError('validation', `${where} has ${texts[long]!.length} ${unit}; at most ${maxTextChars} (MAX_TEXT_CHARS) are allowed.`, { param, code: 'input_too_long' });
    }
  }
}
