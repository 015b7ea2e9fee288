import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { ApiError, InputError } from '../../gateway/src/errors.ts';
import { createMetrics } from '../../gateway/src/metrics/metrics.ts';
import type { CallMeta } from '../../gateway/src/runners/runner-client.ts';
import { CpuShare } from '../../gateway/src/core/cpu-share.ts';
import { Batcher, type BatcherOptions, type CallResult, type CallSpec, type RunnerHandle } from '../../gateway/src/core/batcher.ts';

/**
 * A runner stand-in: vectors encode the text's length and the call number; calls finish on
 * demand. A text 'poison…' is refused per row, as the runner reports bad inputs; a text
 * 'crash…' fails the whole call, as an unexpected runner fault does.
 */
class FakeRunner extends EventEmitter {
  state: 'ready' | 'down' = 'ready';
  calls: string[][] = [];
  pending: { resolve: () => void; reject: (e: Error) => void }[] = [];
  autoFinish = true;
  callMs = 5;
  servedCalls = 0;
  info: { compute_threads: number; profile?: { host_compute: boolean; concurrency: number; call_tokens: number } } | undefined;
  /** The thread count each call was sent with. */
  threads: number[] = [];

  served(): void {
    this.servedCalls += 1;
  }

  get client() {
    return {
      compute: (texts: string[], meta: CallMeta) => new Promise<CallResult<Buffer>>((resolve, reject) => {
        this.calls.push(texts);
        this.threads.push(meta.threads);
        const items = texts.map((t) => {
          const row = Buffer.alloc(8);
          row.writeFloatLE(t.length, 0);
          row.writeFloatLE(this.calls.length, 4);
          return row;
        });
        const failures = texts.flatMap((t, row) => (t.startsWith('poison') ? [{ row, message: 'is poison', code: 'poison' }] : []));
        const reply = { items, tokens: texts.map((t) => t.length + 2), computeSeconds: 0.001, failures };
        const finish = () => (texts.some((t) => t.startsWith('crash')) ? reject(new ApiError('internal', 'model failed')) : resolve(reply));
        if (this.autoFinish) setTimeout(finish, this.callMs);
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
  run: (client, inputs, meta) => (client as unknown as FakeClient).compute(inputs, meta),
});
const SPEC = spec('dense');

const OPTS: BatcherOptions = {
  enableBatching: true, windowMs: 5, maxBatchInputs: 8, maxBatchTokens: 10_000, maxConcurrent: 1, maxQueue: 100, queueTimeoutMs: 10_000, perInputTimeoutMs: 1_000,
};

function setup(opts: Partial<BatcherOptions> = {}) {
  const runner = new FakeRunner();
  const metrics = createMetrics();
  const batcher = new Batcher('m', [runner as unknown as RunnerHandle], { ...OPTS, ...opts }, metrics);
  return { runner, batcher, metrics };
}

const firstFloat = (row: Buffer) => row.readFloatLE(0);
/** Device profiles as a runner on a small CPU and one on a GPU report them. */
const ON_CPU = { host_compute: true, concurrency: 1, call_tokens: 4096 };
const ON_GPU = { host_compute: false, concurrency: 2, call_tokens: 65536 };

describe('Batcher', () => {
  it('splits the cores between the runners computing on them at once, and gives them back to one alone', async () => {
    const share = new CpuShare();
    const a = setup({ cpuShare: share });
    const b = setup({ cpuShare: share });
    const gpu = setup({ cpuShare: share });
    a.runner.info = b.runner.info = { compute_threads: 4, profile: ON_CPU };
    gpu.runner.info = { compute_threads: 4, profile: ON_GPU };
    for (const x of [a, b, gpu]) x.runner.autoFinish = false;
    const onGpu = gpu.batcher.submit(['g'], SPEC, 'g'); // a GPU runner neither gets a count nor counts
    const a1 = a.batcher.submit(['a1'], SPEC, 'a1'); // alone on the CPU: all 4
    const b1 = b.batcher.submit(['b1'], SPEC, 'b1'); // a is busy: half each
    a.runner.finishAll();
    await a1;
    const a2 = a.batcher.submit(['a2'], SPEC, 'a2'); // b still busy
    b.runner.finishAll();
    await b1;
    a.runner.finishAll();
    await a2;
    const a3 = a.batcher.submit(['a3'], SPEC, 'a3'); // alone again
    a.runner.finishAll();
    gpu.runner.finishAll();
    await Promise.all([a3, onGpu]);
    expect(a.runner.threads).toEqual([4, 2, 4]);
    expect(b.runner.threads).toEqual([2]);
    expect(gpu.runner.threads).toEqual([0]);
  });

  it("feeds each runner as its profile says unless the settings say otherwise", async () => {
    // 40 texts of about 300 estimated tokens each: 12,000 tokens in all.
    const texts = Array.from({ length: 40 }, (_, i) => `${i} ${'x'.repeat(1_200)}`);
    for (const [profile, set, calls, atOnce] of [
      [ON_CPU, {}, 4, 1], // 4096 tokens a call, one call at a time
      [ON_GPU, {}, 1, 1], // the whole request in one call
      [ON_GPU, { maxBatchTokens: 3_000 }, 5, 2], // the setting cuts calls; the GPU's two slots take two at once
    ] as const) {
      const { runner, batcher } = setup({ maxBatchInputs: 100, maxBatchTokens: 0, maxConcurrent: 0, ...set });
      runner.info = { compute_threads: 4, profile };
      runner.autoFinish = false;
      const done = batcher.submit(texts, SPEC, 'r');
      await new Promise((r) => setTimeout(r, 10));
      expect(runner.pending.length).toBe(atOnce);
      while (runner.pending.length) {
        runner.finishAll();
        await new Promise((r) => setTimeout(r, 1));
      }
      expect((await done).items).toHaveLength(40);
      expect(runner.calls.length).toBe(calls);
    }
  });

  it('sends no thread count without a share (RUNNER_THREADS set)', async () => {
    const { runner, batcher } = setup();
    runner.info = { compute_threads: 4, profile: ON_CPU };
    await batcher.submit(['x'], SPEC, 'x');
    expect(runner.threads).toEqual([0]);
  });

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

  it('sends a large request longest first, in calls cut by estimated tokens, and answers in its own order', async () => {
    // Estimated tokens: bytes / 4 rounded up, plus 2; maxBatchTokens 40.
    const { runner, batcher } = setup({ maxBatchTokens: 40, maxBatchInputs: 100 });
    const lengths = [4, 100, 8, 60, 4, 36, 12, 200];
    const texts = lengths.map((n, i) => String(i).padEnd(n, 'x'));
    const r = await batcher.submit(texts, SPEC, 'mixed');
    // 200 bytes (52 tokens) is over budget and goes alone; 100 + 60 bytes (27 + 17) overflow 40, so
    // 100 goes alone too; 60 + 36 + 12 + 8 + 4 bytes fill 40 exactly (17 + 11 + 5 + 4 + 3).
    expect(runner.calls.map((c) => c.map((t) => t.length))).toEqual([[200], [100], [60, 36, 12, 8, 4], [4]]);
    expect(r.items.map(firstFloat)).toEqual(lengths);
    expect(r.tokens).toEqual(lengths.map((n) => n + 2));
  });

  it('waits for a call to fill by tokens while another is in flight, and sends it once full', async () => {
    const { runner, batcher } = setup({ maxConcurrent: 2, maxBatchTokens: 12, windowMs: 1000 });
    runner.autoFinish = false;
    const first = batcher.submit(['busy'], SPEC, '0');
    const a = batcher.submit(['x'.repeat(16)], SPEC, '1'); // 6 estimated tokens: not full, waits
    await new Promise((r) => setTimeout(r, 10));
    expect(runner.calls).toHaveLength(1);
    const b = batcher.submit(['y'.repeat(16)], SPEC, '2'); // 12 tokens in all: full, goes at once
    await Promise.resolve();
    expect(runner.calls).toEqual([['busy'], ['x'.repeat(16), 'y'.repeat(16)]]);
    runner.finishAll();
    await Promise.all([first, a, b]);
  });

  it('lets other requests join a call only whole, so none waits between parts of itself', async () => {
    const { runner, batcher } = setup({ maxConcurrent: 1, maxBatchTokens: 20 });
    runner.autoFinish = false;
    const first = batcher.submit(['busy'], SPEC, '0');
    // Each is 2 texts of 6 estimated tokens: two requests (24) overflow 20, one and a bit would not.
    const a = batcher.submit(['a'.repeat(16), 'b'.repeat(16)], SPEC, 'a');
    const b = batcher.submit(['c'.repeat(16), 'd'.repeat(16)], SPEC, 'b');
    for (let i = 0; i < 4; i++) {
      runner.finishAll();
      await new Promise((r) => setTimeout(r, 10));
    }
    await Promise.all([first, a, b]);
    expect(runner.calls.slice(1).map((c) => c.map((t) => t[0]))).toEqual([['a', 'b'], ['c', 'd']]);
  });

  it('names the first refused input of a request in its own numbering, whatever order the call had', async () => {
    const { batcher } = setup();
    const err = await batcher.submit(['ok', 'poison', 'a much longer text', 'poison too, and long'], SPEC, 'bad').catch((e: InputError) => e);
    expect(err).toBeInstanceOf(InputError);
    expect((err as InputError).index).toBe(1);
  });

  it('never mixes calls with different specs, but joins equal specs queued on either side of another', async () => {
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
    expect(runner.calls).toEqual([['busy'], ['a', 'c'], ['b']]);
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

  it('fails only the request that sent a refused input, naming its own index; the call\'s other requests succeed', async () => {
    const { runner, batcher, metrics } = setup({ maxConcurrent: 1 });
    runner.autoFinish = false;
    const first = batcher.submit(['busy'], SPEC, '0');
    const good = batcher.submit(['a', 'b'], SPEC, 'good');
    const bad = batcher.submit(['c', 'poison', 'd'], SPEC, 'bad').catch((e: InputError) => e);
    runner.finishAll();
    await new Promise((r) => setTimeout(r, 20));
    runner.finishAll();
    // They did share a call, each request's inputs longest first.
    expect(runner.calls[1]).toEqual(['a', 'b', 'poison', 'c', 'd']);
    expect((await good).items.map(firstFloat)).toEqual([1, 1]);
    const err = (await bad) as InputError;
    expect(err).toBeInstanceOf(InputError);
    expect(err.index).toBe(1);
    expect(err.forClient('input', 1)).toMatchObject({ kind: 'validation', message: 'input[1] is poison', param: 'input', code: 'poison' });
    await first;
    expect(await metrics.registry.getSingleMetricAsString('embedding_rejected_total')).toContain('reason="poison"} 1');
  });

  it('retries a call that failed as a whole request by request, so only the culprit sees the error', async () => {
    const { runner, batcher } = setup({ maxConcurrent: 1 });
    runner.autoFinish = false;
    const first = batcher.submit(['busy'], SPEC, '0');
    const outcomes = [batcher.submit(['a'], SPEC, '1'), batcher.submit(['crash'], SPEC, '2'), batcher.submit(['b', 'c'], SPEC, '3')]
      .map((p) => p.then(() => 'ok', (e: ApiError) => e.kind));
    for (let i = 0; i < 6; i++) {
      runner.finishAll();
      await new Promise((r) => setTimeout(r, 10));
    }
    await first;
    expect(await Promise.all(outcomes)).toEqual(['ok', 'internal', 'ok']);
    expect(runner.calls.slice(1)).toEqual([['a', 'crash', 'b', 'c'], ['a'], ['crash'], ['b', 'c']]);
  });

  it('does not retry a lone request whose call failed', async () => {
    const { runner, batcher } = setup();
    await expect(batcher.submit(['crash', 'x'], SPEC, '1')).rejects.toMatchObject({ kind: 'internal' });
    expect(runner.calls).toHaveLength(1);
  });

  it('interleaves a large request with one-text requests that arrive while it runs', async () => {
    const { runner, batcher } = setup({ maxConcurrent: 1, maxBatchInputs: 4 });
    runner.autoFinish = false;
    const big = batcher.submit(Array.from({ length: 20 }, (_, i) => `big${i}`.padEnd(5)), SPEC, 'big');
    runner.finishAll();
    await new Promise((r) => setTimeout(r, 10));
    const small = batcher.submit(['small'], SPEC, 'small');
    for (let i = 0; i < 8; i++) {
      runner.finishAll();
      await new Promise((r) => setTimeout(r, 10));
    }
    await Promise.all([big, small]);
    // The one text ran in the very next call, on its own, not after the large request's 20 inputs.
    expect(runner.calls.slice(0, 3).map((c) => c.map((t) => t.trim()))).toEqual([['big0', 'big1', 'big2', 'big3'], ['big4', 'big5', 'big6', 'big7'], ['small']]);
    expect(runner.calls.flat()).toHaveLength(21);
  });

  it('gives a started request and new requests alternate calls, so neither waits behind the other', async () => {
    const { runner, batcher } = setup({ maxConcurrent: 1, maxBatchInputs: 1 });
    runner.autoFinish = false;
    const big = batcher.submit(['b0', 'b1', 'b2', 'b3'], SPEC, 'big');
    const small = ['s0', 's1', 's2'].map((t) => batcher.submit([t], SPEC, t));
    for (let i = 0; i < 8; i++) {
      runner.finishAll();
      await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.all([big, ...small]);
    // b0 went as new work, so the started request has the next turn.
    expect(runner.calls.flat()).toEqual(['b0', 'b1', 's0', 'b2', 's1', 'b3', 's2']);
  });

  it('applies the queue timeout only before a request starts, then a deadline that grows with its size', async () => {
    const { runner, batcher } = setup({ maxConcurrent: 1, maxBatchInputs: 2, queueTimeoutMs: 30, perInputTimeoutMs: 20 });
    runner.callMs = 15;
    // 10 inputs in 5 calls of 15 ms: longer than the 30 ms queue timeout, within 30 + 10 x 20 ms.
    const r = await batcher.submit(Array.from({ length: 10 }, (_, i) => `t${i}`), SPEC, 'long');
    expect(r.items).toHaveLength(10);
    runner.callMs = 200;
    // One input: 30 + 20 ms of budget once started, and its call takes 200 ms.
    await expect(batcher.submit(['slow'], SPEC, 'late')).rejects.toMatchObject({ kind: 'unavailable', code: 'request_timeout' });
  });

  it('finishes a started request within its deadline even while new requests keep the runner busy', async () => {
    const { runner, batcher } = setup({ maxConcurrent: 1, maxBatchInputs: 2, queueTimeoutMs: 100, perInputTimeoutMs: 20 });
    runner.callMs = 10;
    // 6 inputs: 100 + 6 x 20 ms once started. New 2-input requests arrive as fast as calls finish.
    const big = batcher.submit(Array.from({ length: 6 }, (_, i) => `big${i}`), SPEC, 'big').then(() => 'ok', (e: ApiError) => e.code);
    const stream: Promise<unknown>[] = [];
    for (let t = 0; t < 400; t += 10) {
      stream.push(batcher.submit([`s${t}a`, `s${t}b`], SPEC, `s${t}`).catch(() => undefined));
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(await big).toBe('ok');
    await Promise.all(stream);
  });

  it('tells the runner each time a call succeeded, which resets its restart backoff', async () => {
    const { runner, batcher } = setup();
    await batcher.submit(['a'], SPEC, '1');
    await batcher.submit(['b'], SPEC, '2');
    expect(runner.servedCalls).toBe(2);
  });
});
