import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../gateway/src/metrics/metrics.ts';
import { quantileMs, TrafficStats } from '../../gateway/src/core/traffic-stats.ts';

describe('quantileMs', () => {
  it('interpolates within the bucket that holds the rank, as histogram_quantile does', () => {
    const buckets = [[0.01, 50], [0.1, 100], [Infinity, 100]] as const;
    expect(quantileMs(buckets, 0.5)).toBeCloseTo(10);
    expect(quantileMs(buckets, 0.99)).toBeCloseTo(98.2);
    expect(quantileMs([[0.1, 1], [Infinity, 10]], 0.99)).toBeCloseTo(100);
    expect(quantileMs([[0.1, 0], [Infinity, 0]], 0.5)).toBeNull();
  });
});

describe('TrafficStats', () => {
  it('turns the /metrics counters into per-interval rates, quantiles, batch size and hit rate', async () => {
    const metrics = createMetrics();
    const stats = new TrafficStats(metrics, (err) => { throw err; }, 1_000, 2);
    const seen: number[] = [];
    stats.on('sample', (s) => seen.push(s.t));
    expect(await stats.sample(0)).toBeUndefined(); // the baseline
    for (let i = 0; i < 4; i++) {
      metrics.requests.inc({ route: '/v1/embeddings', model: 'm', status: '200' });
      metrics.requestSeconds.observe({ route: '/v1/embeddings', model: 'm' }, 0.02);
    }
    // Probes and scrapes name no model and are left out.
    metrics.requests.inc({ route: '/health', model: '', status: '200' });
    metrics.requestSeconds.observe({ route: '/health', model: '' }, 5);
    metrics.batchInputs.observe({ model: 'm' }, 6);
    metrics.batchInputs.observe({ model: 'm' }, 10);
    metrics.batchTokens.observe({ model: 'm' }, 300);
    metrics.cacheHits.inc({ model: 'm' }, 4);
    metrics.cacheMisses.inc({ model: 'm' }, 16);
    metrics.rejectedRequests.inc({ status: '429', code: 'queue_full' }, 2);
    metrics.rejectedRequests.inc({ status: '503', code: 'model_loading' });
    metrics.queueDepth.set({ model: 'm' }, 3);
    const s = (await stats.sample(2_000))!; // 2 s later, as a late timer would
    expect(s).toMatchObject({
      t: 2_000, requests_per_s: 2, inputs_per_s: 10, tokens_per_s: 150, queue_depth: 3,
      batch_inputs_mean: 8, cache_hit_rate: 0.2, rejected_429: 2, rejected_503: 1,
    });
    // All four took 20 ms, in the (10, 25] ms bucket.
    expect(s.latency_p50_ms!).toBeGreaterThan(10);
    expect(s.latency_p99_ms!).toBeLessThanOrEqual(25);
    // A quiet interval: zero rates, and nothing to take a quantile or a mean of.
    const quiet = (await stats.sample(3_000))!;
    expect(quiet).toMatchObject({ requests_per_s: 0, latency_p50_ms: null, batch_inputs_mean: null, cache_hit_rate: null, rejected_429: 0 });
    await stats.sample(4_000);
    expect(stats.samples.map((x) => x.t)).toEqual([3_000, 4_000]);
    expect(seen).toEqual([2_000, 3_000, 4_000]);
  });
});
