import type { Logger } from 'pino';
import type { CatalogEntry } from '../config/catalog.ts';
import { modelSpec, type Settings } from '../config/settings.ts';
import { ApiError } from '../errors.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { SocketDir } from '../runners/socket-dir.ts';
import { join, resolve } from 'node:path';
import { SupervisedRunner } from '../runners/supervisor.ts';
import { estimateModelBytes, LoadBudget } from './load-budget.ts';
import { ModelLifecycle, type LifecycleEvents } from './model-lifecycle.ts';
import { ModelService } from './model-service.ts';

/** The served models by name, and the lifecycle of all their runners. */
export class ModelRegistry {
  readonly #models = new Map<string, ModelService>();
  readonly #aliases: Map<string, string>;
  readonly #defaultModel: string;
  readonly #preload: Set<string>;
  readonly #metrics: Metrics;

  /** entries: the catalog entries of the models to serve, in MODELS order; sockets: where runners listen. */
  constructor(entries: CatalogEntry[], settings: Settings, sockets: Pick<SocketDir, 'socket'>, metrics: Metrics, logger: Logger) {
    this.#aliases = new Map(settings.MODEL_ALIASES);
    this.#defaultModel = settings.DEFAULT_MODEL;
    this.#metrics = metrics;
    const budget = new LoadBudget({ maxLoaded: settings.MAX_LOADED_MODELS, budgetBytes: settings.MEMORY_BUDGET_MB * 2 ** 20 },
      () => this.models.map((m) => m.lifecycle));
    const events = lifecycleEvents(metrics, logger);
    const paths = new Map(settings.MODELS.map(modelSpec).map((m) => [m.name, m.path && resolve(m.path)]));
    const preload = this.#preload = new Set(settings.PRELOAD.includes('*') ? entries.map((e) => e.name) : settings.PRELOAD);
    let index = 0;
    for (const entry of entries) {
      const name = entry.name;
      const runners = settings.MODEL_DEVICE.map((device) => {
        const runner = new SupervisedRunner(name, device, sockets.socket(index++), settings, logger, paths.get(name));
        const labels = { model: name, device };
        metrics.runnerUp.set(labels, 0);
        metrics.runnerHeldDown.set(labels, 0);
        runner.on('state', (state) => {
          metrics.runnerUp.set(labels, state === 'ready' ? 1 : 0);
          metrics.runnerHeldDown.set(labels, state === 'held_down' ? 1 : 0);
          if (state === 'starting' && runner.restarts > 0) metrics.runnerRestarts.inc(labels);
        });
        return runner;
      });
      const lifecycle = new ModelLifecycle(name, runners, {
        keepAliveS: entry.keep_alive ?? settings.KEEP_ALIVE,
        loadTimeoutMs: settings.LOAD_TIMEOUT_S * 1000,
        failureMemoryMs: settings.RUNNER_HOLD_DOWN_S * 1000,
        estimatedBytes: estimateModelBytes(paths.get(name) ?? join(settings.MODELS_DIR, name)) * runners.length,
      }, budget, events, preload.has(name));
      this.#models.set(name, new ModelService(entry, runners, lifecycle, {
        maxBatchSize: settings.MAX_BATCH_SIZE,
        maxTextChars: settings.MAX_TEXT_CHARS,
        autoTruncate: settings.AUTO_TRUNCATE,
        tokenIdVocabulary: settings.TOKEN_ID_INPUTS,
      }, settings.EMBEDDING_CACHE_SIZE, {
        enableBatching: settings.ENABLE_BATCHING,
        windowMs: settings.BATCH_WINDOW_MS,
        maxBatchInputs: settings.BATCH_WINDOW_MAX_SIZE,
        maxBatchTokens: settings.BATCH_WINDOW_MAX_TOKENS,
        maxConcurrent: settings.MAX_CONCURRENT,
        maxQueue: settings.MAX_QUEUE_SIZE,
        queueTimeoutMs: settings.QUEUE_TIMEOUT_MS,
        perInputTimeoutMs: settings.REQUEST_TIMEOUT_PER_INPUT_MS,
      }, metrics));
    }
  }

  /** All served models, in the order MODELS named them. */
  get models(): ModelService[] {
    return [...this.#models.values()];
  }

  /** Client-facing names that stand for a served model, alias → model. */
  get aliases(): ReadonlyMap<string, string> {
    return this.#aliases;
  }

  /** The model's service, by name or alias; a 404 naming the served models when it is neither. */
  get(name: string): ModelService {
    const model = this.#models.get(this.#aliases.get(name) ?? name);
    if (!model) {
      const aliases = this.#aliases.size ? ` Aliases: ${[...this.#aliases.keys()].join(', ')}.` : '';
      throw new ApiError('not_found', `Model '${name}' is not served here. Served models: ${[...this.#models.keys()].join(', ')}.${aliases}`, { param: 'model', code: 'model_not_found' });
    }
    return model;
  }

  /**
   * The model a request addresses: the named one, or for a request naming none, the one model
   * that can do `capability`: DEFAULT_MODEL when it can, else the only served model that can.
   * Several candidates and no default is a 400 that names them, rather than a silent pick.
   */
  resolve(name: string | undefined, capability: string): ModelService {
    if (name !== undefined) return this.get(name);
    const preferred = this.#defaultModel ? this.#models.get(this.#defaultModel) : undefined;
    if (preferred?.info?.capabilities.includes(capability)) return preferred;
    const able = this.models.filter((m) => m.info?.capabilities.includes(capability));
    // Only models whose runners have not yet started once have no Info.
    const unknown = this.models.filter((m) => !m.info);
    if (able.length === 1) return able[0]!;
    if (able.length > 1) {
      throw new ApiError('validation', `Several served models can do ${capability} (${able.map((m) => m.name).join(', ')}); name one in \`model\`, or set DEFAULT_MODEL.`, { param: 'model', code: 'model_required' });
    }
    // No runner has described a model that can; one still starting may (the default first), and
    // answers 503 until then.
    if (unknown.length) return preferred && !preferred.info ? preferred : unknown[0]!;
    throw new ApiError('validation', `No served model can do ${capability}. Served models: ${[...this.#models.keys()].join(', ')}.`, { param: 'model', code: 'unsupported_model_capability' });
  }

  /**
   * The model that single-model peers' routes describe and serve at POST / (TEI's /info): the
   * named one, else DEFAULT_MODEL, else the first of MODELS.
   */
  primary(name?: string): ModelService {
    return name !== undefined ? this.get(name) : this.#models.get(this.#defaultModel) ?? this.models[0]!;
  }

  /** The models started at boot (PRELOAD). */
  get preloaded(): ModelService[] {
    return this.models.filter((m) => this.#preload.has(m.name));
  }

  /** True when every runner of every preloaded model is ready: the server is ready to serve. */
  get allReady(): boolean {
    return this.preloaded.every((m) => m.runners.every((r) => r.state === 'ready'));
  }

  /**
   * Starts the preloaded models' runners at once; the first that cannot start stops the rest
   * and is rethrown. The other models start on their first request.
   */
  async start(): Promise<void> {
    try {
      await Promise.all(this.preloaded.map((m) => m.lifecycle.boot()));
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Sets each model's resident-memory gauge from its runners now; called at every scrape. */
  sampleMemory(): void {
    for (const m of this.models) this.#metrics.modelMemory.set({ model: m.name }, m.lifecycle.residentBytes());
  }

  /** Stops every runner. */
  async stop(): Promise<void> {
    await Promise.all(this.models.flatMap((m) => m.runners.map((r) => r.stop())));
  }
}

/** Loads and unloads as metrics and log lines. */
function lifecycleEvents(metrics: Metrics, logger: Logger): LifecycleEvents {
  return {
    loaded(model, seconds) {
      metrics.modelLoads.inc({ model, outcome: 'ok' });
      metrics.modelLoadSeconds.observe({ model }, seconds);
      logger.info({ model, seconds: Math.round(seconds * 1000) / 1000 }, 'model_loaded');
    },
    loadFailed(model, reason) {
      metrics.modelLoads.inc({ model, outcome: 'error' });
      logger.error({ model, reason }, 'model_load_failed');
    },
    unloaded(model, reason) {
      metrics.modelUnloads.inc({ model, reason });
      logger.info({ model, reason }, 'model_unloaded');
    },
  };
}
