import type { Span } from '@opentelemetry/api';
import { ApiError, InputError } from '../errors.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { runnerLimits, type RunnerLimits } from '../runners/device-policy.ts';
import type { CallMeta, RunnerClient } from '../runners/runner-client.ts';
import type { SupervisedRunner } from '../runners/supervisor.ts';
import type { CpuShare } from './cpu-share.ts';
import { estimateTokens } from './token-estimate.ts';
import { contextOf, endSpan, startChildSpan, startLinkedSpan, type RequestTrace } from '../tracing/spans.ts';

/** An input of a runner call that the runner could not process; `row` is its position in the call. */
export interface RowFailure {
  row: number;
  message: string;
  code: string;
}

/** What one runner call returns, one item per input; failed rows hold placeholders. */
export interface CallResult<T> {
  items: T[];
  tokens: number[];
  computeSeconds: number;
  /** Inputs the runner refused; every other row is computed as if it had come alone. */
  failures: RowFailure[];
}

/**
 * A kind of runner call (dense embeddings with given options, a rerank against one query...).
 * Queued inputs whose specs have the same key may share one call.
 */
export interface CallSpec<T, I = string> {
  key: string;
  run(client: RunnerClient, inputs: I[], meta: CallMeta): Promise<CallResult<T>>;
}

/** What the batcher needs of a runner; SupervisedRunner is the real one. */
export type RunnerHandle = Pick<SupervisedRunner, 'state' | 'client' | 'on' | 'served' | 'info'>;

/** The knobs of one model's batcher, taken from the settings. */
export interface BatcherOptions {
  enableBatching: boolean;
  windowMs: number;
  maxBatchInputs: number;
  /** Most estimated tokens in one runner call (see token-estimate.ts); one longer input goes alone. 0: the runner's profile. */
  maxBatchTokens: number;
  /** Calls in flight per runner; 0: the runner's profile. */
  maxConcurrent: number;
  maxQueue: number;
  /** Longest wait before a request's first inputs reach a runner. */
  queueTimeoutMs: number;
  /** Once started, a request has queueTimeoutMs plus this much per input to finish. */
  perInputTimeoutMs: number;
  /** Shares the cores between every model's CPU runners; absent when RUNNER_THREADS fixes the threads. */
  cpuShare?: CpuShare;
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
  inputs: unknown[];
  spec: CallSpec<unknown, unknown>;
  requestId: string;
  signal: AbortSignal | undefined;
  /** The request's trace id (for the runner's log lines) and span (parent of the queue and batch spans). */
  trace: RequestTrace | undefined;
  /** Open from admission to the job's first runner call; undefined while tracing is off. */
  queueSpan: Span | undefined;
  admittedAt: number;
  startedAt: number | undefined;
  /** Estimated tokens of each input. */
  costs: number[];
  /**
   * Input indices, longest first: the job's calls are cut from this order, so each holds inputs
   * of similar length and pads little, however the client ordered them.
   */
  order: number[];
  /** Position in order of the next input to hand to a runner. */
  next: number;
  /** Estimated tokens of the inputs not yet handed to a runner. */
  pendingTokens: number;
  /** Inputs whose results have come back. */
  done: number;
  items: unknown[];
  tokens: number[];
  inferenceMs: number;
  settled: boolean;
  /** When the job fails: admission + queue timeout until it starts, then start + its budget. */
  deadline: number;
  timer: NodeJS.Timeout | undefined;
  resolve: (r: BatchResult<unknown>) => void;
  reject: (e: Error) => void;
}

/** The inputs one job contributes to a call, as indices into its inputs. */
interface Slice {
  job: Job;
  rows: number[];
}

/** A job's share of the next call: the next `take` entries of its order. */
interface Part {
  job: Job;
  take: number;
}

/** The next call, before its inputs are taken. */
interface Plan {
  parts: Part[];
  /** No more inputs fit: the call is at its input or token limit. */
  full: boolean;
}

/**
 * Admission, queueing and micro-batching for one model, in front of its runners.
 *
 * Requests queue as jobs. Whenever a ready runner has a free slot (its concurrency, see
 * device-policy.ts), queued inputs with one call spec are cut into a runner call of up to
 * maxBatchInputs inputs and the runner's call tokens (estimated), across job boundaries, so concurrent requests share forward
 * passes and large requests split. A job's inputs go out longest first, so a large request's
 * calls each hold texts of similar length: the runner, which sorts and buckets every call by
 * length, then pads almost nothing, as if it had been handed the whole request at once. A token
 * budget rather than a count bounds how long one call holds a runner slot, and so how long a
 * newly arrived request can wait for one.
 *
 * Jobs that have started (some of their inputs went to a runner) and jobs that have not take
 * turns, call by call, whenever both are waiting; within each, the earliest deadline goes first.
 * A job waiting to start must start within the queue timeout; once started, it has a budget
 * that grows with its size (see #start). A one-text request that arrives while a huge one runs
 * therefore waits for at most one call, and the huge one still gets every other call, so
 * neither starves. Only the first job of a call may be split; the others join it only whole,
 * so a request that fits in one call is answered by one call. Jobs that have not started never
 * share a call with started ones: a one-text request is not topped up with a huge request's
 * inputs, so its call stays as short as the new work.
 *
 * An idle server dispatches at once; only while other calls are in flight does a free slot wait
 * up to windowMs for the batch to fill. A job that cannot be dispatched right away, with
 * maxQueue jobs already waiting, is refused.
 *
 * One bad input fails only its own job: the runner reports it per row, and the other rows of
 * the call are answered. A call that fails as a whole for another reason is retried job by job,
 * so only the job that caused it sees the error.
 */
export class Batcher {
  readonly #model: string;
  readonly #runners: RunnerHandle[];
  readonly #opts: BatcherOptions;
  readonly #metrics: Metrics;
  /** Jobs with inputs not yet handed to a runner, in arrival order. */
  readonly #queue: Job[] = [];
  /** Slices of a call that failed as a whole, each to be retried in a call of its own. */
  readonly #retries: Slice[] = [];
  readonly #inflight = new Map<RunnerHandle, number>();
  #windowTimer: NodeJS.Timeout | undefined;
  /** Whether the last call served jobs that had started; the other side goes next. */
  #startedWentLast = false;
  #windowStart: number | undefined;

  constructor(model: string, runners: RunnerHandle[], opts: BatcherOptions, metrics: Metrics) {
    this.#model = model;
    this.#runners = runners;
    this.#opts = opts;
    this.#metrics = metrics;
    for (const runner of runners) {
      this.#inflight.set(runner, 0);
      // A probing runner may come back within a second: what is queued waits for its answer.
      runner.on('state', (state) => (state === 'ready' ? this.#pump() : state !== 'probing' && this.#onRunnerLost()));
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

  /** Queues inputs for computing; rejects with an ApiError (an InputError for one bad input). */
  submit<T, I>(inputs: I[], spec: CallSpec<T, I>, requestId: string, signal?: AbortSignal, trace?: RequestTrace): Promise<BatchResult<T>> {
    if (!this.#runners.some((r) => r.state === 'ready' || r.state === 'probing')) {
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
      const now = performance.now();
      const costs = inputs.map(estimateTokens);
      const job: Job = {
        inputs, spec: spec as CallSpec<unknown, unknown>, requestId, signal, trace,
        queueSpan: trace?.context && startChildSpan(trace.context, 'queue', { 'edge_embed.model': this.#model }), admittedAt: now, startedAt: undefined,
        costs, order: inputs.map((_, i) => i).sort((a, b) => costs[b]! - costs[a]!), next: 0,
        pendingTokens: costs.reduce((a, b) => a + b, 0), done: 0, items: new Array(inputs.length), tokens: new Array(inputs.length), inferenceMs: 0, settled: false,
        deadline: now + this.#opts.queueTimeoutMs, timer: undefined, resolve: resolve as (r: BatchResult<unknown>) => void, reject,
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

  /** The ready runner with a free slot and the fewest calls in flight, if any. */
  #freeRunner(): RunnerHandle | undefined {
    let best: RunnerHandle | undefined;
    for (const runner of this.#runners) {
      const n = this.#inflight.get(runner)!;
      if (runner.state === 'ready' && n < this.#limits(runner).concurrency && (!best || n < this.#inflight.get(best)!)) best = runner;
    }
    return best;
  }

  #limits(runner: RunnerHandle): RunnerLimits {
    return runnerLimits(runner.info, this.#opts);
  }

  #pump(): void {
    for (;;) {
      this.#dropSettled();
      if (this.#queue.length === 0 && this.#retries.length === 0) return;
      const runner = this.#freeRunner();
      if (!runner) return;
      const retry = this.#retries.shift();
      if (retry) {
        this.#dispatch(runner, [retry]);
        continue;
      }
      const plan = this.#plan(this.#limits(runner).callTokens);
      if (this.#holdForWindow(plan, runner)) return;
      this.#dispatch(runner, this.#take(plan.parts));
    }
  }

  /**
   * The next call's inputs, without taking them: the most urgent job of the side whose turn it
   * is (started or not), then other jobs of that side with its call spec, by deadline.
   */
  #plan(callTokens: number): Plan {
    const waiting = this.#queue.filter((j) => j.startedAt !== undefined);
    const fresh = this.#queue.filter((j) => j.startedAt === undefined);
    const side = waiting.length && fresh.length ? (this.#startedWentLast ? fresh : waiting) : waiting.length ? waiting : fresh;
    const byDeadline = side.sort((a, b) => a.deadline - b.deadline);
    const head = byDeadline[0]!;
    const parts: Part[] = [];
    let inputs = this.#opts.maxBatchInputs;
    let tokens = callTokens;
    let full = false;
    for (const job of byDeadline) {
      if (job.spec.key !== head.spec.key) continue;
      const left = job.order.length - job.next;
      if (job !== head) {
        // Others join only whole: a request that fits in one call is answered by one call,
        // rather than wait for other calls between its parts.
        if (left > inputs || job.pendingTokens > tokens) {
          full = true;
          continue;
        }
        parts.push({ job, take: left });
        inputs -= left;
        tokens -= job.pendingTokens;
        continue;
      }
      let take = 0;
      for (; take < left; take++) {
        const cost = job.costs[job.order[job.next + take]!]!;
        // The call's first input always goes, however long: the runner buckets it on its own.
        if (inputs === 0 || (cost > tokens && take > 0)) break;
        inputs -= 1;
        tokens -= cost;
      }
      parts.push({ job, take });
      // Without batching a call never mixes requests, though a large one is still split.
      if (take < left || !this.#opts.enableBatching) return { parts, full: true };
    }
    return { parts, full: full || inputs === 0 || tokens <= 0 };
  }

  /**
   * True while a free slot should keep waiting for more inputs: batching is on, its runner is
   * busy with other calls (so the batch would only wait there), the batch is not full, and the
   * window opened by the first wait is still open.
   */
  #holdForWindow(plan: Plan, runner: RunnerHandle): boolean {
    const o = this.#opts;
    if (o.enableBatching && o.windowMs > 0 && this.#inflight.get(runner)! > 0 && !plan.full) {
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

  #take(parts: Part[]): Slice[] {
    this.#startedWentLast = parts[0]!.job.startedAt !== undefined;
    const slices = parts.map(({ job, take }) => {
      const slice = { job, rows: job.order.slice(job.next, job.next + take) };
      if (job.startedAt === undefined) this.#start(job);
      job.next += take;
      for (const i of slice.rows) job.pendingTokens -= job.costs[i]!;
      return slice;
    });
    for (let i = this.#queue.length - 1; i >= 0; i--) {
      const job = this.#queue[i]!;
      if (job.next === job.order.length) this.#queue.splice(i, 1);
    }
    this.#updateDepth();
    return slices;
  }

  /** The job's first call: the queue timeout gives way to a deadline sized to the job. */
  #start(job: Job): void {
    job.startedAt = performance.now();
    this.#metrics.queueSeconds.observe({ model: this.#model }, (job.startedAt - job.admittedAt) / 1000);
    endSpan(job.queueSpan);
    clearTimeout(job.timer);
    const budgetMs = this.#opts.queueTimeoutMs + job.inputs.length * this.#opts.perInputTimeoutMs;
    job.deadline = job.startedAt + budgetMs;
    job.timer = setTimeout(() => {
      this.#metrics.rejected.inc({ model: this.#model, reason: 'deadline' });
      this.#fail(job, new ApiError('unavailable',
        `Request of ${job.inputs.length} input(s) did not finish within ${Math.round(budgetMs / 1000)} s of starting on model '${this.#model}' ` +
        '(QUEUE_TIMEOUT_MS + inputs x REQUEST_TIMEOUT_PER_INPUT_MS); the server is overloaded, retry later or send fewer inputs.',
        { retryAfterS: 2, code: 'request_timeout' }));
    }, budgetMs);
  }

  async #dispatch(runner: RunnerHandle, slices: Slice[]): Promise<void> {
    const client = runner.client!;
    const inputs = slices.flatMap((s) => s.rows.map((i) => s.job.inputs[i]));
    const requestIds = [...new Set(slices.map((s) => s.job.requestId))];
    this.#inflight.set(runner, this.#inflight.get(runner)! + 1);
    const alone = this.#limits(runner).coreThreads;
    const share = alone > 0 ? this.#opts.cpuShare : undefined;
    const threads = share?.begin(runner, alone) ?? 0;
    const traceIds = [...new Set(slices.flatMap((s) => (s.job.trace ? [s.job.trace.id] : [])))];
    const span = slices.some((s) => s.job.trace?.context) ? this.#batchSpan(slices, runner, inputs.length, requestIds, threads) : undefined;
    const started = performance.now();
    try {
      const reply = await slices[0]!.job.spec.run(client, inputs, { requestIds, traceIds, threads, trace: span && contextOf(span) });
      runner.served();
      const elapsedMs = performance.now() - started;
      span?.setAttribute('edge_embed.tokens', reply.tokens.reduce((a, b) => a + b, 0));
      endSpan(span);
      this.#record(reply, elapsedMs, inputs.length, 'ok');
      this.#deliver(slices, reply, elapsedMs);
    } catch (err) {
      endSpan(span, err);
      this.#metrics.runnerCalls.inc({ model: this.#model, outcome: 'error' });
      const jobs = new Set(slices.map((s) => s.job));
      if (jobs.size > 1 && isolatable(err)) {
        // One request's input may have broken the call for all: each retries alone.
        this.#retries.push(...slices.filter((s) => !s.job.settled));
      } else {
        for (const job of jobs) this.#fail(job, err as Error);
      }
    } finally {
      share?.end(runner);
      this.#inflight.set(runner, this.#inflight.get(runner)! - 1);
      this.#pump();
    }
  }

  /** The span of one runner call, under the requests it serves (see startLinkedSpan). */
  #batchSpan(slices: Slice[], runner: RunnerHandle, inputs: number, requestIds: string[], threads: number) {
    const parents = [...new Set(slices.flatMap((s) => (s.job.trace?.context ? [s.job.trace.context] : [])))];
    return startLinkedSpan('batch', parents, {
      'edge_embed.model': this.#model, 'edge_embed.device': runner.info?.device ?? '', 'edge_embed.inputs': inputs,
      'edge_embed.request_ids': requestIds, 'edge_embed.threads': threads,
    });
  }

  /**
   * Hands each job its rows. A job with refused rows fails with the first of them in its own
   * numbering; the other jobs of the call succeed.
   */
  #deliver(slices: Slice[], reply: CallResult<unknown>, elapsedMs: number): void {
    const failed = new Map(reply.failures.map((f) => [f.row, f]));
    let row = 0;
    for (const { job, rows } of slices) {
      let refused: { index: number; failure: RowFailure } | undefined;
      for (const i of rows) {
        const failure = failed.get(row);
        if (failure && (!refused || i < refused.index)) refused = { index: i, failure };
        job.items[i] = reply.items[row];
        job.tokens[i] = reply.tokens[row]!;
        row++;
      }
      if (refused) {
        const { index, failure } = refused;
        this.#metrics.rejected.inc({ model: this.#model, reason: failure.code || 'invalid_input' });
        this.#fail(job, new InputError(index, failure.message, failure.code || null));
        continue;
      }
      job.done += rows.length;
      job.inferenceMs += elapsedMs;
      if (job.done === job.inputs.length && !job.settled) {
        this.#settle(job);
        job.resolve({ items: job.items, tokens: job.tokens, queueMs: job.startedAt! - job.admittedAt, inferenceMs: job.inferenceMs });
      }
    }
  }

  #record(reply: CallResult<unknown>, elapsedMs: number, inputs: number, outcome: string): void {
    const model = this.#model;
    this.#metrics.runnerCalls.inc({ model, outcome });
    this.#metrics.inferenceSeconds.observe({ model }, elapsedMs / 1000);
    this.#metrics.runnerComputeSeconds.observe({ model }, reply.computeSeconds);
    this.#metrics.batchInputs.observe({ model }, inputs);
    this.#metrics.batchTokens.observe({ model }, reply.tokens.reduce((a, b) => a + b, 0));
  }

  #settle(job: Job): void {
    job.settled = true;
    clearTimeout(job.timer);
  }

  #fail(job: Job, err: Error): void {
    if (job.settled) return;
    this.#settle(job);
    // A job that never left the queue (timeout, a client gone, no runner) still shows its wait.
    if (job.startedAt === undefined) endSpan(job.queueSpan, err);
    job.reject(err);
    this.#dropSettled();
    this.#updateDepth();
  }

  #dropSettled(): void {
    for (let i = this.#queue.length - 1; i >= 0; i--) {
      if (this.#queue[i]!.settled) this.#queue.splice(i, 1);
    }
    for (let i = this.#retries.length - 1; i >= 0; i--) {
      if (this.#retries[i]!.job.settled) this.#retries.splice(i, 1);
    }
  }

  #onRunnerLost(): void {
    // Queued work would only wait out its timeout while no runner can serve it.
    if (this.#runners.some((r) => r.state === 'ready' || r.state === 'probing')) return;
    for (const job of [...this.#queue, ...this.#retries.map((s) => s.job)]) this.#fail(job, this.#unavailable());
  }

  #unavailable(): ApiError {
    return new ApiError('unavailable', `Model '${this.#model}' is not ready (its runner is starting, restarting or not answering); retry shortly.`,
      { retryAfterS: 2, code: 'model_unavailable' });
  }

  #updateDepth(): void {
    this.#metrics.queueDepth.set({ model: this.#model }, this.waiting);
  }
}

/** Failures that one request's input could have caused; a lost runner or a timeout could not. */
function isolatable(err: unknown): boolean {
  return err instanceof ApiError && (err.kind === 'internal' || err.kind === 'validation');
}

const clientClosed = () => new ApiError('validation', 'Client closed the request.', { code: 'client_closed' });
