import { ApiError } from '../errors.ts';
import { residentBytes } from '../runners/process-memory.ts';
import type { SupervisedRunner } from '../runners/supervisor.ts';

/** Where a servable model stands, as /v1/models and /health report it. */
export type ModelState = 'unloaded' | 'loading' | 'ready' | 'unloading' | 'failed';

/** Why a model's runners were stopped, as the metrics label it. */
export type UnloadReason = 'idle' | 'budget' | 'admin';

/** What a lifecycle needs of a runner; SupervisedRunner is the real one. */
export type LifecycleRunner = Pick<SupervisedRunner, 'state' | 'reason' | 'pid' | 'start' | 'stop'>;

/** Frees what a load needs first (see LoadBudget); throws an ApiError when it cannot. */
export interface Room {
  makeRoom(model: ModelLifecycle): Promise<void>;
}

/** Hears of loads and unloads, for metrics and logs. */
export interface LifecycleEvents {
  loaded(model: string, seconds: number): void;
  loadFailed(model: string, reason: string): void;
  unloaded(model: string, reason: UnloadReason): void;
}

/** One model's lifecycle knobs, from the settings and its catalog entry. */
export interface LifecycleOptions {
  /** Seconds the runners stay up after the last request ends; -1 keeps them up. */
  keepAliveS: number;
  /** Longest a request waits for a load before it gets a 503. */
  loadTimeoutMs: number;
  /** How long a failed load is remembered: requests in that time fail at once with its reason. */
  failureMemoryMs: number;
  /**
   * Expected resident bytes before the first load has been measured (see estimateModelBytes);
   * asked only when a budget needs it, so a server without one never walks the weight folders.
   */
  estimatedBytes: () => number;
}

/**
 * Starts a model's runners on first use and stops them when they have been idle for the
 * keep-alive, or when another model needs the room.
 *
 * Every request holds the model from before its inputs are checked against the model until
 * its answer is ready (acquire/release), so a model with queued or in-flight work is never
 * stopped. Concurrent first requests share one load. The resident memory the runners reach is
 * remembered, so the next load of the model is accounted at what it really took.
 */
export class ModelLifecycle {
  readonly name: string;
  readonly runners: LifecycleRunner[];
  readonly #opts: LifecycleOptions;
  readonly #room: Room;
  readonly #events: LifecycleEvents;
  /** Runners started and not stopped since, whether or not they are ready right now. */
  #loaded = false;
  #loading: Promise<void> | undefined;
  #unloading: Promise<void> | undefined;
  #failure: { reason: string; at: number } | undefined;
  /** Requests holding the model. */
  #active = 0;
  #lastUsed: number | undefined;
  #peakBytes: number | undefined;
  #estimate: number | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #pinned = false;

  /**
   * preloaded: the registry starts this model's runners at boot (see boot); until they are up,
   * requests get the batcher's 503 rather than starting a load of their own.
   */
  constructor(name: string, runners: LifecycleRunner[], opts: LifecycleOptions, room: Room, events: LifecycleEvents,
    preloaded: boolean) {
    this.name = name;
    this.runners = runners;
    this.#opts = opts;
    this.#room = room;
    this.#events = events;
    this.#loaded = preloaded;
  }

  /**
   * Starts a preloaded model's runners at boot, outside the budget (the operator asked for
   * them); rejects with the runner's start error.
   */
  async boot(): Promise<void> {
    const started = performance.now();
    try {
      await Promise.all(this.runners.map((r) => r.start()));
    } catch (err) {
      // Not loaded after all: requests get the reason, then a load of their own once it expires.
      await Promise.all(this.runners.map((r) => r.stop()));
      this.#loaded = false;
      this.#failure = { reason: firstLine((err as Error).message), at: Date.now() };
      this.#events.loadFailed(this.name, this.#failure.reason);
      throw err;
    }
    this.residentBytes();
    this.#events.loaded(this.name, (performance.now() - started) / 1000);
    this.#scheduleIdle();
  }

  /** The model's state, from its own loads and unloads and its runners' states. */
  get state(): ModelState {
    if (this.#unloading) return 'unloading';
    if (this.#loading) return 'loading';
    if (!this.#loaded) return this.#failure ? 'failed' : 'unloaded';
    if (this.runners.some((r) => r.state === 'ready')) return 'ready';
    // Loaded runners that are not ready are restarting after a crash, or held down.
    return this.runners.every((r) => r.state === 'held_down') ? 'failed' : 'loading';
  }

  /** Why the model is not serving, when something failed. */
  get reason(): string | undefined {
    if (this.state === 'ready') return undefined;
    return this.#loaded ? this.runners.map((r) => r.reason).find(Boolean) : this.#failure?.reason;
  }

  /** True while requests hold the model or it is loading: it must not be stopped now. */
  get busy(): boolean {
    return this.#active > 0 || this.#loading !== undefined;
  }

  /** Runners started or starting: what counts against MAX_LOADED_MODELS and the memory budget. */
  get occupying(): boolean {
    return this.#loaded || this.#loading !== undefined;
  }

  /** When the last request that held the model ended (ms since the epoch); undefined before any. */
  get lastUsed(): number | undefined {
    return this.#lastUsed;
  }

  /** A pinned model is never stopped for being idle or for room. */
  get pinned(): boolean {
    return this.#pinned;
  }

  /** This model's keep-alive in seconds (-1: forever). */
  get keepAliveS(): number {
    return this.#opts.keepAliveS;
  }

  /**
   * Resident memory of the model's runner processes now (0 when none runs). The peak once loaded
   * is remembered for expectedBytes; a peak caught while loading (a precision check holds two
   * encoders at once) is not, or the model could be refused room it fits in once loaded.
   */
  residentBytes(): number {
    let total = 0;
    for (const r of this.runners) total += (r.pid !== undefined ? residentBytes(r.pid) : undefined) ?? 0;
    if (this.#loaded && total > (this.#peakBytes ?? 0)) this.#peakBytes = total;
    return total;
  }

  /** What the model takes once loaded: the most it was seen to take, else the estimate. */
  expectedBytes(): number {
    return this.#peakBytes ?? (this.#estimate ??= this.#opts.estimatedBytes());
  }

  /**
   * Holds the model for one request, loading it first when needed; call the returned function
   * once the request is done with it. Throws a 503 ApiError when the model cannot load in time.
   */
  async acquire(): Promise<() => void> {
    this.#active += 1;
    clearTimeout(this.#idleTimer);
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      this.#active -= 1;
      this.#lastUsed = Date.now();
      this.#scheduleIdle();
    };
    try {
      await this.#ensureLoaded();
    } catch (err) {
      release();
      throw err;
    }
    return release;
  }

  async #ensureLoaded(): Promise<void> {
    // Loaded runners that are restarting answer 503 from the batcher, as they always did.
    if (this.#loaded && !this.#unloading) return;
    const failure = this.#failure;
    if (failure && Date.now() - failure.at < this.#opts.failureMemoryMs) {
      throw new ApiError('unavailable', `Model '${this.name}' failed to load: ${failure.reason}`,
        { retryAfterS: Math.ceil((failure.at + this.#opts.failureMemoryMs - Date.now()) / 1000), code: 'model_load_failed' });
    }
    let timer: NodeJS.Timeout | undefined;
    const timeoutS = this.#opts.loadTimeoutMs / 1000;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ApiError('unavailable',
        `Model '${this.name}' is still loading after ${timeoutS} s (LOAD_TIMEOUT_S); retry shortly.`,
        { retryAfterS: 5, code: 'model_loading' })), this.#opts.loadTimeoutMs);
    });
    try {
      await Promise.race([this.load(), timeout]);
    } catch (err) {
      if (err instanceof ApiError) throw err;
      throw new ApiError('unavailable', `Model '${this.name}' failed to load: ${firstLine((err as Error).message)}`,
        { retryAfterS: Math.ceil(this.#opts.failureMemoryMs / 1000), code: 'model_load_failed' });
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Starts the runners, once however many callers ask at the same time, after making room for
   * them. Rejects with the runner's own start error, so that a failed preload at boot can say why.
   */
  load(): Promise<void> {
    this.#loading ??= this.#load().finally(() => {
      this.#loading = undefined;
    });
    return this.#loading;
  }

  async #load(): Promise<void> {
    if (this.#unloading) await this.#unloading;
    if (this.#loaded) return;
    await this.#room.makeRoom(this);
    const started = performance.now();
    try {
      await Promise.all(this.runners.map((r) => r.start()));
    } catch (err) {
      await Promise.all(this.runners.map((r) => r.stop()));
      const reason = firstLine((err as Error).message);
      this.#failure = { reason, at: Date.now() };
      this.#events.loadFailed(this.name, reason);
      throw err;
    }
    this.#loaded = true;
    this.#failure = undefined;
    this.residentBytes();
    this.#events.loaded(this.name, (performance.now() - started) / 1000);
    this.#scheduleIdle();
  }

  /** Stops the runners; requests that come later load the model again. */
  unload(reason: UnloadReason): Promise<void> {
    if (this.#unloading) return this.#unloading;
    if (!this.#loaded) return Promise.resolve();
    clearTimeout(this.#idleTimer);
    this.residentBytes(); // the peak so far sizes the next load
    this.#unloading = Promise.all(this.runners.map((r) => r.stop())).then(() => {
      this.#loaded = false;
      this.#events.unloaded(this.name, reason);
    }).finally(() => {
      this.#unloading = undefined;
    });
    return this.#unloading;
  }

  /** Starts the keep-alive clock when nothing holds the model. */
  #scheduleIdle(): void {
    clearTimeout(this.#idleTimer);
    const keepAlive = this.#opts.keepAliveS;
    if (keepAlive < 0 || this.#active > 0 || !this.#loaded || this.#pinned) return;
    this.#idleTimer = setTimeout(() => {
      if (this.#active === 0 && !this.#pinned) void this.unload('idle');
    }, keepAlive * 1000);
    this.#idleTimer.unref();
  }

  /** Pins or unpins the model; unpinning starts its keep-alive clock. */
  pin(pinned: boolean): void {
    this.#pinned = pinned;
    if (pinned) clearTimeout(this.#idleTimer);
    else this.#scheduleIdle();
  }
}

const firstLine = (text: string) => text.split('\n')[0]!;
