import { EventEmitter } from 'node:events';
import type { MetricObjectWithValues, MetricValue, MetricValueWithName } from 'prom-client';
import type { Metrics } from '../metrics/metrics.ts';
import type { StatsSample } from './stats-sample.ts';

/** Sums of the counters a sample is the difference of. */
interface Totals {
  /** When they were read, Unix milliseconds. */
  at: number;
  requests: number;
  inputs: number;
  tokens: number;
  calls: number;
  callInputs: number;
  hits: number;
  misses: number;
  rejected429: number;
  rejected503: number;
  /** Cumulative request-latency buckets by upper bound (seconds), Infinity last. */
  latency: Map<number, number>;
}

type Values = MetricObjectWithValues<MetricValue<string>> | MetricObjectWithValues<MetricValueWithName<string>>;

const sum = (m: Values, name?: string, keep: (labels: Record<string, unknown>) => boolean = () => true) =>
  m.values.reduce((n, v) => n + ((!name || (v as MetricValueWithName<string>).metricName === name) && keep(v.labels) ? v.value : 0), 0);

/** Requests that named a model: the serving routes, not probes, scrapes or the dashboard. */
const served = (labels: Record<string, unknown>) => Boolean(labels.model);

/**
 * The live series the dashboard draws: every interval, the gateway's own Prometheus counters are
 * read and differenced into rates, latency quantiles, batch size and cache hit rate, so the page
 * and /metrics can never disagree. The last `keep` samples are held for a page that opens late;
 * each new one is also emitted as 'sample' for the stream.
 *
 * Reading a few counters once a second costs next to nothing, and nothing runs per request.
 */
export class TrafficStats extends EventEmitter<{ sample: [StatsSample] }> {
  readonly intervalMs: number;
  readonly #metrics: Metrics;
  readonly #keep: number;
  readonly #samples: StatsSample[] = [];
  #last: Totals | undefined;
  #timer: NodeJS.Timeout | undefined;

  readonly #onError: (err: Error) => void;

  /** onError hears of a sample that failed; the series then has a gap, and sampling goes on. */
  constructor(metrics: Metrics, onError: (err: Error) => void, intervalMs = 1_000, keep = 300) {
    super();
    // Every open dashboard listens; the default limit of 10 would warn on stderr.
    this.setMaxListeners(0);
    this.#metrics = metrics;
    this.#onError = onError;
    this.intervalMs = intervalMs;
    this.#keep = keep;
  }

  /** Starts sampling; the timer never keeps the process alive. */
  start(): void {
    this.#timer ??= setInterval(() => this.sample().catch(this.#onError), this.intervalMs).unref();
  }

  /** Stops sampling; the samples held stay readable. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** The samples held, oldest first. */
  get samples(): StatsSample[] {
    return [...this.#samples];
  }

  /** Takes one sample now (the timer calls this); the first only sets the baseline. */
  async sample(now = Date.now()): Promise<StatsSample | undefined> {
    const totals = await this.#totals(now);
    const last = this.#last;
    this.#last = totals;
    if (!last) return undefined;
    // The time that really passed: a busy event loop fires the timer late.
    const seconds = Math.max(totals.at - last.at, 1) / 1000;
    const rate = (key: 'requests' | 'inputs' | 'tokens') => (totals[key] - last[key]) / seconds;
    const calls = totals.calls - last.calls;
    const looked = totals.hits - last.hits + totals.misses - last.misses;
    const buckets = [...totals.latency].map(([le, n]) => [le, n - (last.latency.get(le) ?? 0)] as const);
    const sample: StatsSample = {
      t: now,
      requests_per_s: rate('requests'),
      inputs_per_s: rate('inputs'),
      tokens_per_s: rate('tokens'),
      latency_p50_ms: quantileMs(buckets, 0.5),
      latency_p99_ms: quantileMs(buckets, 0.99),
      queue_depth: sum(await this.#metrics.queueDepth.get()),
      batch_inputs_mean: calls > 0 ? (totals.callInputs - last.callInputs) / calls : null,
      cache_hit_rate: looked > 0 ? (totals.hits - last.hits) / looked : null,
      rejected_429: totals.rejected429 - last.rejected429,
      rejected_503: totals.rejected503 - last.rejected503,
    };
    this.#samples.push(sample);
    if (this.#samples.length > this.#keep) this.#samples.shift();
    this.emit('sample', sample);
    return sample;
  }

  async #totals(at: number): Promise<Totals> {
    const m = this.#metrics;
    const [requests, latency, batchInputs, batchTokens, hits, misses, rejected] = await Promise.all([
      m.requests.get(), m.requestSeconds.get(), m.batchInputs.get(), m.batchTokens.get(), m.cacheHits.get(), m.cacheMisses.get(),
      m.rejectedRequests.get(),
    ]);
    const buckets = new Map<number, number>();
    for (const v of (latency as Values).values as MetricValueWithName<string>[]) {
      if (v.metricName !== 'http_request_duration_seconds_bucket' || !served(v.labels)) continue;
      const le = v.labels.le === '+Inf' ? Infinity : Number(v.labels.le);
      buckets.set(le, (buckets.get(le) ?? 0) + v.value);
    }
    const hitCount = sum(hits);
    return {
      at,
      requests: sum(requests, undefined, served),
      inputs: sum(batchInputs, 'embedding_batch_size_inputs_sum') + hitCount,
      tokens: sum(batchTokens, 'embedding_batch_size_tokens_sum'),
      calls: sum(batchInputs, 'embedding_batch_size_inputs_count'),
      callInputs: sum(batchInputs, 'embedding_batch_size_inputs_sum'),
      hits: hitCount,
      misses: sum(misses),
      rejected429: sum(rejected, undefined, (l) => l.status === '429'),
      rejected503: sum(rejected, undefined, (l) => l.status === '503'),
      latency: new Map([...buckets].sort((a, b) => a[0] - b[0])),
    };
  }
}

/**
 * The q-quantile of cumulative buckets (upper bound, count at or below it), interpolated linearly
 * within its bucket as Prometheus' histogram_quantile does; in the +Inf bucket, the highest finite
 * bound. Milliseconds, or null for no observations.
 */
export function quantileMs(buckets: readonly (readonly [number, number])[], q: number): number | null {
  const total = buckets.at(-1)?.[1] ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (le === Infinity) return lower * 1000;
      return (lower + (le - lower) * ((rank - below) / Math.max(count - below, 1e-12))) * 1000;
    }
    lower = le;
    below = count;
  }
  return lower * 1000;
}
