import type { Logger } from 'pino';
import type { CatalogEntry } from '../config/catalog.ts';
import type { Settings } from '../config/settings.ts';
import { ApiError } from '../errors.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { SocketDir } from '../runners/socket-dir.ts';
import { SupervisedRunner } from '../runners/supervisor.ts';
import { ModelService } from './model-service.ts';

/** The served models by name, and the lifecycle of all their runners. */
export class ModelRegistry {
  readonly #models = new Map<string, ModelService>();

  /** entries: the catalog entries of the models to serve, in MODELS order; sockets: where runners listen. */
  constructor(entries: CatalogEntry[], settings: Settings, sockets: Pick<SocketDir, 'socket'>, metrics: Metrics, logger: Logger) {
    let index = 0;
    for (const entry of entries) {
      const name = entry.name;
      const runners = settings.MODEL_DEVICE.map((device) => {
        const runner = new SupervisedRunner(name, device, sockets.socket(index++), settings, logger);
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
      this.#models.set(name, new ModelService(entry, runners, {
        maxBatchSize: settings.MAX_BATCH_SIZE,
        maxTextChars: settings.MAX_TEXT_CHARS,
        autoTruncate: settings.AUTO_TRUNCATE,
        tokenIdVocabulary: settings.TOKEN_ID_INPUTS,
      }, settings.EMBEDDING_CACHE_SIZE, {
        enableBatching: settings.ENABLE_BATCHING,
        windowMs: settings.BATCH_WINDOW_MS,
        maxBatchInputs: settings.BATCH_WINDOW_MAX_SIZE,
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

  /** The model's service; a 404 naming the served models when it is not one of them. */
  get(name: string): ModelService {
    const model = this.#models.get(name);
    if (!model) {
      throw new ApiError('not_found', `Model '${name}' is not served here. Served models: ${[...this.#models.keys()].join(', ')}.`, { param: 'model', code: 'model_not_found' });
    }
    return model;
  }

  /**
   * For routes where `model` is optional (llama.cpp's and TEI's serve one model): the named
   * model, or else the first served model that can do `capability`.
   */
  resolve(name: string | undefined, capability: string): ModelService {
    if (name !== undefined) return this.get(name);
    const known = this.models.filter((m) => m.info);
    const able = known.find((m) => m.info!.capabilities.includes(capability));
    if (able) return able;
    if (known.length === this.models.length) {
      throw new ApiError('validation', `No served model can do ${capability}. Served models: ${[...this.#models.keys()].join(', ')}.`, { param: 'model' });
    }
    // Some runner has not reported yet; the first model answers (with a 503 if it is not ready).
    return this.models[0]!;
  }

  /** True when every runner of every model is ready. */
  get allReady(): boolean {
    return this.models.every((m) => m.runners.every((r) => r.state === 'ready'));
  }

  /** Starts every runner at once; the first that cannot start stops the rest and is rethrown. */
  async start(): Promise<void> {
    try {
      await Promise.all(this.models.flatMap((m) => m.runners.map((r) => r.start())));
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  /** Stops every runner. */
  async stop(): Promise<void> {
    await Promise.all(this.models.flatMap((m) => m.runners.map((r) => r.stop())));
  }
}
