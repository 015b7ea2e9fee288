import { ApiError } from '../errors.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { RunnerClient } from '../runners/runner-client.ts';
import type { SupervisedRunner } from '../runners/supervisor.ts';

/** What one runner call returns, one item per input. */
export interface CallResult<T> {
  items: T[];
  tokens: number[];
  computeSeconds: number;
}

/**
 * A kind of runner call (dense embeddings with given options, a rerank against one query...).
 * Queued inputs whose specs have the same key may share one call.
 */
export interface CallSpec<T, I = string> {
  key: string;
  run(client: RunnerClient, inputs: I[], requestIds: string[]): Promise<CallResult<T>>;
}

/** What the batcher needs of a runner; SupervisedRunner is the real one. */
export type RunnerHandle = Pick<SupervisedRunner, 'state' | 'client' | 'on'>;

/** The knobs of one model's batcher, taken from the settings. */
export interface BatcherOptions {
  enableBatching: boolean;
  windowMs: number;
  maxBatchInputs: number;
  maxConcurrent: number;
  maxQueue: number;
  queueTimeoutMs: number;
}

/** Computed inputs of one request, aligned with the inputs it submitted. */
export interface BatchResult<T> {
  items: T[];
  tokens: number[];
  /** Milliseconds from admission to the first runner call. */
  queueMs: number;
  /** Milliseconds of the runner calls that served this request, summed. */
  inferenceMs: number;
}

interface Job {
  texts: unknown[];
  spec: CallSpec<unknown, unknown>;
  requestId: string;
  signal: AbortSignal | undefined;
  admittedAt: number;
  startedAt: number | undefined;
  /** Next input index to hand to a runner. */
  next: number;
  /** Inputs whose vectors have come back. */
  done: number;
  items: unknown[];
  tokens: number[];
  inferenceMs: number;
  settled: boolean;
  timer: NodeJS.Timeout | undefined;
  resolve: (r: BatchResult<unknown>) => void;
  reject: (e: Error) => void;
}

interface Slice {
  job: Job;
  from: number;
  to: number;
}

/**
 * Admission, queueing and micro-batching for one model, in front of its runners.
 *
 * Requests queue as jobs. Whenever a ready runner has a free slot (MAX_CONCURRENT per runner),
 * the front of the queue is cut into one runner call of up to maxBatchInputs inputs, across
 * the boundaries of jobs with the same call spec, so concurrent requests share forward passes
 * and large requests split. An idle server dispatches at once; only while other calls are in
 * flight does a free slot wait up to windowMs for the batch to fill, which trades a little
 * latency for throughput under load.
 * A job that cannot be dispatched right away, with maxQueue jobs already waiting, is refused.
 */
export class Batcher {
  readonly #model: string;
  readonly #runners: RunnerHandle[];
  readonly #opts: BatcherOptions;
  readonly #metrics: Metrics;
  readonly #queue: Job[] = [];
  readonly #inflight = new Map<RunnerHandle, number>();
  #windowTimer: NodeJS.Timeout | undefined;
  #windowStart: number | undefined;

  constructor(model: string, runners: RunnerHandle[], opts: BatcherOptions, metrics: Metrics) {
    this.#model = model;
    this.#runners = runners;
    this.#opts = opts;
    this.#metrics = metrics;
    for (const runner of runners) {
      this.#inflight.set(runner, 0);
      runner.on('state', (state) => (state === 'ready' ? this.#pump() : this.#onRunnerLost()));
    }
  }

  /** Requests waiting that have not reached a runner yet. */
  get waiting(): number {
    return this.#queue.filter((j) => j.startedAt === undefined).length;
  }

  /** Runner calls in flight across this model's runners. */
  get inflight(): number {
    let n = 0;
    for (const v of this.#inflight.values()) n += v;
    return n;
  }

  /** Queues inputs for computing; rejects with an ApiError when refused or failed. */
  submit<T, I>(texts: I[], spec: CallSpec<T, I>, requestId: string, signal?: AbortSignal): Promise<BatchResult<T>> {
    if (!this.#runners.some((r) => r.state === 'ready')) {
      return Promise.reject(this.#unavailable());
    }
    if (signal?.aborted) return Promise.reject(clientClosed());
    if (!this.#freeRunner() && this.waiting >= this.#opts.maxQueue) {
      this.#metrics.rejected.inc({ model: this.#model, reason: 'queue_full' });
      return Promise.reject(new ApiError('overloaded',
        `Model '${this.#model}' is at capacity (MAX_QUEUE_SIZE=${this.#opts.maxQueue} waiting); retry after the Retry-After delay.`,
        { retryAfterS: 1, code: 'queue_full' }));
    }
    return new Promise<BatchResult<T>>((resolve, reject) => {
      const job: Job = {
        texts, spec: spec as CallSpec<unknown, unknown>, requestId, signal, admittedAt: performance.now(), startedAt: undefined,
        next: 0, done: 0, items: new Array(texts.length), tokens: new Array(texts.length),
        inferenceMs: 0, settled: false, timer: undefined, resolve: resolve as (r: BatchResult<unknown>) => void, reject,
      };
      job.timer = setTimeout(() => {
        this.#metrics.rejected.inc({ model: this.#model, reason: 'queue_timeout' });
        this.#fail(job, new ApiError('overloaded',
          `Request waited longer than QUEUE_TIMEOUT_MS=${this.#opts.queueTimeoutMs} for model '${this.#model}'.`,
          { retryAfterS: 1, code: 'queue_timeout' }));
      }, this.#opts.queueTimeoutMs);
      signal?.addEventListener('abort', () => this.#fail(job, clientClosed()), { once: true });
      this.#queue.push(job);
      this.#updateDepth();
      this.#pump();
    });
  }

  #freeRunner(): RunnerHandle | undefined {
    let best: RunnerHandle | undefined;
    for (const runner of this.#runners) {
      const n = this.#inflight.get(runner)!;
      if (runner.state === 'ready' && n < this.#opts.maxConcurrent && (!best || n < this.#inflight.get(best)!)) best = runner;
    }
    return best;
  }

  #pump(): void {
    for (;;) {
      this.#dropSettled();
      if (this.#queue.length === 0) return;
      const runner = this.#freeRunner();
      if (!runner || this.#holdForWindow()) return;
      this.#dispatch(runner, this.#takeBatch());
    }
  }

  /**
   * True while a free slot should keep waiting for more inputs: batching is on, other calls
   * are in flight, the batch is not full, and the window opened by the first wait is still open.
   */
  #holdForWindow(): boolean {
    const o = this.#opts;
    if (o.enableBatching && o.windowMs > 0 && this.inflight > 0 && this.#queuedInputs() < o.maxBatchInputs) {
      const now = performance.now();
      this.#windowStart ??= now;
      const left = this.#windowStart + o.windowMs - now;
      if (left > 0) {
        this.#windowTimer ??= setTimeout(() => {
          this.#windowTimer = undefined;
          this.#pump();
        }, left);
        return true;
      }
    }
    clearTimeout(this.#windowTimer);
    this.#windowTimer = undefined;
    this.#windowStart = undefined;
    return false;
  }

  /** Inputs that could join the call at the head of the queue. */
  #queuedInputs(): number {
    let n = 0;
    const key = this.#queue[0]?.spec.key;
    for (const job of this.#queue) {
      if (job.spec.key !== key) break;
      n += job.texts.length - job.next;
    }
    return n;
  }

  #takeBatch(): Slice[] {
    const slices: Slice[] = [];
    let room = this.#opts.maxBatchInputs;
    const key = this.#queue[0]!.spec.key;
    while (room > 0 && this.#queue.length > 0 && this.#queue[0]!.spec.key === key) {
      const job = this.#queue[0]!;
      const take = Math.min(room, job.texts.length - job.next);
      slices.push({ job, from: job.next, to: job.next + take });
      if (job.startedAt === undefined) {
        job.startedAt = performance.now();
        this.#metrics.queueSeconds.observe({ model: this.#model }, (job.startedAt - job.admittedAt) / 1000);
      }
      job.next += take;
      room -= take;
      if (job.next === job.texts.length) {
        // Fully handed to runners: from here on it is computing, not waiting.
        clearTimeout(job.timer);
        this.#queue.shift();
      }
      // Without batching a call never mixes requests, though a large one is still split.
      if (!this.#opts.enableBatching) break;
    }
    this.#updateDepth();
    return slices;
  }

  async #dispatch(runner: RunnerHandle, slices: Slice[]): Promise<void> {
    const client = runner.client!;
    const texts = slices.flatMap((s) => s.job.texts.slice(s.from, s.to));
    const ids = [...new Set(slices.map((s) => s.job.requestId))];
    this.#inflight.set(runner, this.#inflight.get(runner)! + 1);
    const started = performance.now();
    try {
      const reply = await slices[0]!.job.spec.run(client, texts, ids);
      const elapsedMs = performance.now() - started;
      this.#record(reply.tokens, reply.computeSeconds, elapsedMs, texts.length, 'ok');
      let row = 0;
      for (const { job, from, to } of slices) {
        for (let i = from; i < to; i++, row++) {
          job.items[i] = reply.items[row];
          job.tokens[i] = reply.tokens[row]!;
        }
        job.done += to - from;
        job.inferenceMs += elapsedMs;
        if (job.done === job.texts.length && !job.settled) {
          this.#settle(job);
          job.resolve({ items: job.items, tokens: job.tokens, queueMs: job.startedAt! - job.admittedAt, inferenceMs: job.inferenceMs });
        }
      }
    } catch (err) {
      this.#metrics.runnerCalls.inc({ model: this.#model, outcome: 'error' });
      for (const { job } of slices) this.#fail(job, err as Error);
    } finally {
      this.#inflight.set(runner, this.#inflight.get(runner)! - 1);
      this.#pump();
    }
  }

  #record(tokenCounts: number[], computeS: number, elapsedMs: number, inputs: number, outcome: string): void {
    const model = this.#model;
    this.#metrics.runnerCalls.inc({ model, outcome });
    this.#metrics.inferenceSeconds.observe({ model }, elapsedMs / 1000);
    this.#metrics.runnerComputeSeconds.observe({ model }, computeS);
    this.#metrics.batchInputs.observe({ model }, inputs);
    this.#metrics.batchTokens.observe({ model }, tokenCounts.reduce((a, b) => a + b, 0));
  }

  #settle(job: Job): void {
    job.settled = true;
    clearTimeout(job.timer);
  }

  #fail(job: Job, err: Error): void {
    if (job.settled) return;
    this.#settle(job);
    job.reject(err);
    this.#dropSettled();
    this.#updateDepth();
  }

  #dropSettled(): void {
    for (let i = this.#queue.length - 1; i >= 0; i--) {
      if (this.#queue[i]!.settled) this.#queue.splice(i, 1);
    }
  }

  #onRunnerLost(): void {
    // Queued work would only wait out its timeout while no runner can serve it.
    if (this.#runners.some((r) => r.state === 'ready')) return;
    for (const job of [...this.#queue]) this.#fail(job, this.#unavailable());
  }

  #unavailable(): ApiError {
    return new ApiError('unavailable', `Model '${this.#model}' is not ready (its runner is starting or restarting); retry shortly.`,
      { retryAfterS: 2, code: 'model_unavailable' });
  }

  #updateDepth(): void {
    this.#metrics.queueDepth.set({ model: this.#model }, this.waiting);
  }
}

const clientClosed = () => new ApiError('validation', 'Client closed the request.', { code: 'client_closed' });
