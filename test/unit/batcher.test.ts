import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../gateway/src/errors.ts';
import { createMetrics } from '../../gateway/src/metrics/metrics.ts';
import { Batcher, type BatcherOptions, type CallResult, type CallSpec, type RunnerHandle } from '../../gateway/src/services/batcher.ts';

/** A runner stand-in: vectors encode the text's length and the call number; calls finish on demand. */
class FakeRunner extends EventEmitter {
  state: 'ready' | 'down' = 'ready';
  calls: string[][] = [];
  pending: { resolve: () => void; reject: (e: Error) => void }[] = [];
  autoFinish = true;

  get client() {
    return {
      compute: (texts: string[]) => new Promise<CallResult<Buffer>>((resolve, reject) => {
        this.calls.push(texts);
        const items = texts.map((t) => {
          const row = Buffer.alloc(8);
          row.writeFloatLE(t.length, 0);
          row.writeFloatLE(this.calls.length, 4);
          return row;
        });
        const reply = { items, tokens: texts.map((t) => t.length + 2), computeSeconds: 0.001 };
        const finish = () => resolve(reply);
        if (this.autoFinish) setTimeout(finish, 5);
        else this.pending.push({ resolve: finish, reject });
      }),
    };
  }

  finishAll(): void {
    for (const p of this.pending.splice(0)) p.resolve();
  }

  failAll(err: Error): void {
    for (const p of this.pending.splice(0)) p.reject(err);
  }
}

type FakeClient = FakeRunner['client'];
const spec = (key: string): CallSpec<Buffer> => ({
  key,
  run: (client, inputs) => (client as unknown as FakeClient).compute(inputs),
});
const SPEC = spec('dense');

const OPTS: BatcherOptions = { enableBatching: true, windowMs: 5, maxBatchInputs: 8, maxConcurrent: 1, maxQueue: 100, queueTimeoutMs: 10_000 };

function setup(opts: Partial<BatcherOptions> = {}) {
  const runner = new FakeRunner();
  const metrics = createMetrics();
  const batcher = new Batcher('m', [runner as unknown as RunnerHandle], { ...OPTS, ...opts }, metrics);
  return { runner, batcher, metrics };
}

const firstFloat = (row: Buffer) => row.readFloatLE(0);

describe('Batcher', () => {
  it('coalesces concurrent requests into fewer runner calls, each answer its own rows in order', async () => {
    const { runner, batcher } = setup();
    const texts = Array.from({ length: 12 }, (_, i) => 'x'.repeat(i + 1));
    const results = await Promise.all(texts.map((t, i) => batcher.submit([t], SPEC, `r${i}`)));
    expect(runner.calls.length).toBeLessThan(texts.length);
    results.forEach((r, i) => {
      expect(r.items).toHaveLength(1);
      expect(firstFloat(r.items[0]!)).toBe(i + 1);
      expect(r.tokens).toEqual([i + 3]);
    });
  });

  it('splits a request larger than a batch across calls and reassembles it', async () => {
    const { runner, batcher } = setup();
    const texts = Array.from({ length: 20 }, (_, i) => 'y'.repeat(i + 1));
    const r = await batcher.submit(texts, SPEC, 'big');
    expect(runner.calls.map((c) => c.length)).toEqual([8, 8, 4]);
    expect(r.items.map(firstFloat)).toEqual(texts.map((t) => t.length));
  });

  it('never mixes calls with different specs', async () => {
    const { runner, batcher } = setup({ maxConcurrent: 1 });
    runner.autoFinish = false;
    const first = batcher.submit(['busy'], SPEC, '0');
    const others = [batcher.submit(['a'], SPEC, '1'), batcher.submit(['b'], spec('other'), '2'), batcher.submit(['c'], SPEC, '3')];
    runner.finishAll();
    for (let i = 0; i < 5; i++) {
      await new Promise((r) => setTimeout(r, 10));
      runner.finishAll();
    }
    await Promise.all([first, ...others]);
    expect(runner.calls).toEqual([['busy'], ['a'], ['b'], ['c']]);
  });

  it('never mixes requests in one call when batching is off', async () => {
    const { runner, batcher } = setup({ enableBatching: false, maxConcurrent: 1 });
    await Promise.all([batcher.submit(['a', 'b'], SPEC, '1'), batcher.submit(['c'], SPEC, '2'), batcher.submit(['d'], SPEC, '3')]);
    expect(runner.calls).toEqual([['a', 'b'], ['c'], ['d']]);
  });

  it('dispatches at once when idle instead of waiting for the window', async () => {
    const { runner, batcher } = setup({ windowMs: 1000 });
    runner.autoFinish = false;
    const p = batcher.submit(['solo'], SPEC, '1');
    await Promise.resolve();
    expect(runner.calls).toEqual([['solo']]);
    runner.finishAll();
    await p;
  });

  it('refuses with 429 past MAX_CONCURRENT + MAX_QUEUE_SIZE, and loses nothing it admitted', async () => {
    const { runner, batcher, metrics } = setup({ maxConcurrent: 1, maxQueue: 2 });
    runner.autoFinish = false;
    const outcomes = Array.from({ length: 6 }, (_, i) => batcher.submit([`t${i}`], SPEC, `r${i}`).then(() => 'ok', (e: ApiError) => e));
    await new Promise((r) => setTimeout(r, 20));
    // One in flight, two waiting; the other three were refused at once.
    runner.finishAll();
    await new Promise((r) => setTimeout(r, 20));
    runner.finishAll();
    const results = await Promise.all(outcomes);
    expect(results.filter((r) => r === 'ok')).toHaveLength(3);
    const refused = results.filter((r): r is ApiError => r instanceof ApiError);
    expect(refused).toHaveLength(3);
    for (const e of refused) {
      expect(e.kind).toBe('overloaded');
      expect(e.retryAfterS).toBeGreaterThan(0);
    }
    expect(await metrics.registry.getSingleMetricAsString('embedding_rejected_total')).toContain('reason="queue_full"} 3');
  });

  it('drops a queued request whose client went away before it reaches the runner', async () => {
    const { runner, batcher } = setup({ maxConcurrent: 1 });
    runner.autoFinish = false;
    const first = batcher.submit(['first'], SPEC, '1');
    const controller = new AbortController();
    const gone = batcher.submit(['never-run'], SPEC, '2', controller.signal).catch((e: ApiError) => e);
    controller.abort();
    expect(((await gone) as ApiError).code).toBe('client_closed');
    runner.finishAll();
    await first;
    await new Promise((r) => setTimeout(r, 20));
    expect(runner.calls.flat()).not.toContain('never-run');
  });

  it('fails a request that waits past the queue timeout', async () => {
    const { runner, batcher } = setup({ maxConcurrent: 1, queueTimeoutMs: 30 });
    runner.autoFinish = false;
    const first = batcher.submit(['slow'], SPEC, '1');
    const waiting = batcher.submit(['waits'], SPEC, '2').catch((e: ApiError) => e);
    const err = (await waiting) as ApiError;
    expect(err.kind).toBe('overloaded');
    expect(err.code).toBe('queue_timeout');
    runner.finishAll();
    await first;
  });

  it('fails in-flight and queued work with the runner error when the runner dies', async () => {
    const { runner, batcher } = setup({ maxConcurrent: 1 });
    runner.autoFinish = false;
    const inflight = batcher.submit(['a'], SPEC, '1').catch((e: ApiError) => e);
    const queued = batcher.submit(['b'], SPEC, '2').catch((e: ApiError) => e);
    runner.state = 'down';
    runner.emit('state', 'down');
    runner.failAll(new ApiError('unavailable', 'gone'));
    expect(((await inflight) as ApiError).kind).toBe('unavailable');
    expect(((await queued) as ApiError).kind).toBe('unavailable');
    await expect(batcher.submit(['c'], SPEC, '3')).rejects.toMatchObject({ kind: 'unavailable' });
  });
});
