import type { Logger } from 'pino';
import type { CatalogEntry } from '../config/catalog.ts';
import { modelSpec, type Settings } from '../config/settings.ts';
import { ApiError } from '../errors.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { SocketDir } from '../runners/socket-dir.ts';
import { join, resolve } from 'node:path';
import { SupervisedRunner } from '../runners/supervisor.ts';
import { estimateModelBytes, LoadBudget } from './load-budget.ts';
import { CpuShare } from './cpu-share.ts';
import { ModelLifecycle, type LifecycleEvents } from './model-lifecycle.ts';
import { ModelService } from './model-service.ts';

/** What a reload changed, by model name. */
export interface ReloadResult {
  added: string[];
  removed: string[];
  replaced: string[];
}

/** The settings a reload re-reads; the others need a restart. */
const RELOADED = ['MODELS', 'PRELOAD', 'DEFAULT_MODEL', 'MODEL_ALIASES', 'KEEP_ALIVE'] as const;

/** The served models by name, and the lifecycle of all their runners. */
export class ModelRegistry {
  #models = new Map<string, ModelService>();
  #aliases: Map<string, string>;
  #defaultModel: string;
  #preload: Set<string>;
  #settings: Settings;
  /** Models taken out by a reload that still finish the requests holding them. */
  readonly #retiring = new Set<ModelService>();
  readonly #metrics: Metrics;
  readonly #logger: Logger;
  readonly #sockets: Pick<SocketDir, 'socket'>;
  readonly #budget: LoadBudget;
  readonly #events: LifecycleEvents;
  /** Every model's CPU runners share the cores, so one share spans them all. */
  readonly #cpuShare = new CpuShare();
  /** What each model was built from, to tell which a reload changed. */
  readonly #sources = new Map<string, string>();
  #nextSocket = 0;

  /** entries: the catalog entries of the models to serve, in MODELS order; sockets: where runners listen. */
  constructor(entries: CatalogEntry[], settings: Settings, sockets: Pick<SocketDir, 'socket'>, metrics: Metrics, logger: Logger) {
    this.#settings = settings;
    this.#aliases = new Map(settings.MODEL_ALIASES);
    this.#defaultModel = settings.DEFAULT_MODEL;
    this.#metrics = metrics;
    this.#logger = logger;
    this.#sockets = sockets;
    // Retiring models count too: their runners hold memory until they stop.
    this.#budget = new LoadBudget({ maxLoaded: settings.MAX_LOADED_MODELS, budgetBytes: settings.MEMORY_BUDGET_MB * 2 ** 20 },
      () => [...this.models, ...this.#retiring].map((m) => m.lifecycle));
    this.#events = lifecycleEvents(metrics, logger);
    this.#preload = preloadSet(settings, entries);
    for (const entry of entries) this.#models.set(entry.name, this.#build(entry));
  }

  /** One model's runners, lifecycle and service, from its entry and the current settings. */
  #build(entry: CatalogEntry): ModelService {
    const settings = this.#settings;
    const metrics = this.#metrics;
    const name = entry.name;
    const path = pathOf(settings, name);
    this.#sources.set(name, sourceOf(settings, entry));
    const runners = settings.MODEL_DEVICE.map((device, index) => {
      const runner = new SupervisedRunner(entry, device, this.#sockets.socket(this.#nextSocket++), settings, this.#logger, path);
      const labels = { model: name, device, runner: String(index) };
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
      estimatedBytes: () => estimateModelBytes(path ?? join(settings.MODELS_DIR, name)) * runners.length,
    }, this.#budget, this.#events, this.#preload.has(name));
    return new ModelService(entry, runners, lifecycle, {
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
      cpuShare: settings.RUNNER_THREADS === 0 ? this.#cpuShare : undefined,
    }, metrics);
  }

  /**
   * Brings the served models in line with re-read settings and catalog entries (SIGHUP or
   * POST /admin/reload). New models are added, and loaded if PRELOAD names them. Models no longer
   * named, or whose entry, folder or keep-alive changed, leave the list at once, so new requests
   * go to their replacement or get a 404; each finishes the requests that hold it, then stops.
   * Only the model settings (RELOADED) change; the rest keep their values until a restart.
   */
  async reload(entries: CatalogEntry[], next: Settings): Promise<ReloadResult> {
    const settings: Settings = { ...this.#settings };
    for (const key of RELOADED) (settings as Record<string, unknown>)[key] = next[key];
    this.#settings = settings;
    const result: ReloadResult = { added: [], removed: [], replaced: [] };
    const old = this.#models;
    const models = new Map<string, ModelService>();
    this.#preload = preloadSet(settings, entries);
    for (const entry of entries) {
      const current = old.get(entry.name);
      if (current && this.#sources.get(entry.name) === sourceOf(settings, entry)) {
        models.set(entry.name, current);
        continue;
      }
      (current ? result.replaced : result.added).push(entry.name);
      models.set(entry.name, this.#build(entry));
    }
    for (const [name, service] of old) {
      if (models.get(name) === service) continue;
      if (!models.has(name)) result.removed.push(name);
      this.#retire(service);
    }
    this.#models = models;
    this.#aliases = new Map(settings.MODEL_ALIASES);
    this.#defaultModel = settings.DEFAULT_MODEL;
    // Preloaded newcomers start now; one that cannot start is logged and answers 503, as a
    // crashed runner would, and the reload still counts as done.
    const starting = result.added.concat(result.replaced).filter((n) => this.#preload.has(n));
    const started = await Promise.allSettled(starting.map((n) => models.get(n)!.lifecycle.boot()));
    started.forEach((s, i) => {
      if (s.status === 'rejected') this.#logger.error({ model: starting[i], err: (s.reason as Error).message }, 'runner_start_failed');
    });
    return result;
  }

  /** Stops a model once no request holds it; until then it finishes what it has. */
  #retire(service: ModelService): void {
    this.#retiring.add(service);
    const lifecycle = service.lifecycle;
    const stop = async () => {
      while (lifecycle.busy) await new Promise((r) => setTimeout(r, 100));
      await Promise.all(service.runners.map((r) => r.stop()));
      this.#retiring.delete(service);
      this.#logger.info({ model: service.name }, 'model_retired');
    };
    void stop();
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

  /**
   * True when the server is ready to serve: every runner of every preloaded model is ready, or
   * the model was stopped on purpose (idle or for room) and loads again on its next request. A
   * preloaded model still starting, restarting after a crash, or failed is not ready.
   */
  get allReady(): boolean {
    return this.preloaded.every((m) => {
      const state = m.lifecycle.state;
      return state === 'unloaded' || state === 'unloading' || m.runners.every((r) => r.state === 'ready');
    });
  }

  /**
   * Starts the preloaded models' runners at once; the first that cannot start stops the rest
   * and is rethrown. The other models start on their first request. Preloads sit outside
   * MAX_LOADED_MODELS (the operator asked for each by name), which then applies from the first
   * load on demand; a boot past it says so once.
   */
  async start(): Promise<void> {
    const max = this.#settings.MAX_LOADED_MODELS;
    if (max > 0 && this.preloaded.length > max) {
      this.#logger.warn({ preloaded: this.preloaded.length, max_loaded_models: max },
        'preload_over_limit: PRELOAD starts more models than MAX_LOADED_MODELS; the first load on demand stops idle ones until the limit holds');
    }
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

  /** Stops every runner, retiring models' included. */
  async stop(): Promise<void> {
    await Promise.all([...this.models, ...this.#retiring].flatMap((m) => m.runners.map((r) => r.stop())));
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

/** The models PRELOAD names, `*` being all of them. */
function preloadSet(settings: Settings, entries: CatalogEntry[]): Set<string> {
  return new Set(settings.PRELOAD.includes('*') ? entries.map((e) => e.name) : settings.PRELOAD);
}

/** The absolute folder of a model served from a folder of its own (MODELS=name=folder). */
function pathOf(settings: Settings, name: string): string | undefined {
  const path = settings.MODELS.map(modelSpec).find((m) => m.name === name)?.path;
  return path && resolve(path);
}

/** Everything a model is built from that a reload may change. */
function sourceOf(settings: Settings, entry: CatalogEntry): string {
  return JSON.stringify({ entry, path: pathOf(settings, entry.name), keepAlive: settings.KEEP_ALIVE });
}
