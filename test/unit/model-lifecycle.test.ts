import { describe, expect, it } from 'vitest';
import { ApiError } from '../../gateway/src/errors.ts';
import { LoadBudget } from '../../gateway/src/core/load-budget.ts';
import { type LifecycleRunner, ModelLifecycle, type UnloadReason } from '../../gateway/src/core/model-lifecycle.ts';

/** A runner stand-in whose starts take a few ms, or fail when told to. */
class FakeRunner implements LifecycleRunner {
  state: LifecycleRunner['state'] = 'down';
  reason: string | undefined;
  pid: number | undefined;
  starts = 0;
  stops = 0;
  failWith: string | undefined;

  async start(): Promise<void> {
    this.starts += 1;
    this.state = 'starting';
    await new Promise((r) => setTimeout(r, 5));
    if (this.failWith) {
      this.state = 'down';
      throw new Error(`${this.failWith}\nmore detail`);
    }
    this.state = 'ready';
  }

  async stop(): Promise<void> {
    this.stops += 1;
    this.state = 'stopped';
  }
}

function setup(names: string[], opts: { keepAliveS?: number; maxLoaded?: number; preloaded?: boolean | string[]; estimatedMb?: number | Record<string, number>; budgetMb?: number } = {}) {
  const events: string[] = [];
  const runners = new Map<string, FakeRunner>();
  const lifecycles: ModelLifecycle[] = [];
  const budget = new LoadBudget({ maxLoaded: opts.maxLoaded ?? 0, budgetBytes: (opts.budgetMb ?? 0) * 2 ** 20 }, () => lifecycles);
  for (const name of names) {
    const runner = new FakeRunner();
    runners.set(name, runner);
    lifecycles.push(new ModelLifecycle(name, [runner], {
      keepAliveS: opts.keepAliveS ?? -1, loadTimeoutMs: 1_000, failureMemoryMs: 60_000, estimatedBytes: () => (typeof opts.estimatedMb === 'object' ? opts.estimatedMb[name]! : opts.estimatedMb ?? 500) * 2 ** 20,
    }, budget, {
      loaded: (model) => events.push(`loaded ${model}`),
      loadFailed: (model) => events.push(`failed ${model}`),
      unloaded: (model, reason: UnloadReason) => events.push(`unloaded ${model} ${reason}`),
    }, Array.isArray(opts.preloaded) ? opts.preloaded.includes(name) : opts.preloaded ?? false));
  }
  const get = (name: string) => lifecycles.find((l) => l.name === name)!;
  return { events, runners, get };
}

const until = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
};

describe('ModelLifecycle', () => {
  it('loads an unloaded model once for concurrent requests, then serves from it', async () => {
    const { runners, get, events } = setup(['a']);
    expect(get('a').state).toBe('unloaded');
    const releases = await Promise.all([get('a').acquire(), get('a').acquire(), get('a').acquire()]);
    expect(runners.get('a')!.starts).toBe(1);
    expect(get('a').state).toBe('ready');
    releases.forEach((release) => release());
    await get('a').acquire();
    expect(runners.get('a')!.starts).toBe(1);
    expect(events).toEqual(['loaded a']);
  });

  it('stops a keep-alive 0 model when its last request is done, never while one holds it', async () => {
    const { runners, get, events } = setup(['a'], { keepAliveS: 0 });
    const first = await get('a').acquire();
    const second = await get('a').acquire();
    first();
    await new Promise((r) => setTimeout(r, 20));
    expect(runners.get('a')!.stops).toBe(0);
    second();
    second(); // releasing twice counts once
    await until(() => get('a').state === 'unloaded');
    expect(events).toEqual(['loaded a', 'unloaded a idle']);
    // The next request loads it again.
    (await get('a').acquire())();
    expect(runners.get('a')!.starts).toBe(2);
  });

  it('keeps a model with keep-alive -1 loaded, and a pinned one whatever its keep-alive', async () => {
    const forever = setup(['a']);
    (await forever.get('a').acquire())();
    const pinned = setup(['b'], { keepAliveS: 0 });
    pinned.get('b').pin(true);
    (await pinned.get('b').acquire())();
    await new Promise((r) => setTimeout(r, 30));
    expect(forever.get('a').state).toBe('ready');
    expect(pinned.get('b').state).toBe('ready');
    pinned.get('b').pin(false);
    await until(() => pinned.get('b').state === 'unloaded');
    expect(pinned.get('b').state).toBe('unloaded');
  });

  it('remembers a failed load: later requests get its reason at once, without another start', async () => {
    const { runners, get, events } = setup(['a']);
    runners.get('a')!.failWith = 'weights are corrupt';
    const err = await get('a').acquire().catch((e: ApiError) => e);
    expect(err).toMatchObject({ kind: 'unavailable', code: 'model_load_failed', message: "Model 'a' failed to load: weights are corrupt" });
    expect((err as ApiError).retryAfterS).toBeGreaterThan(0);
    expect(get('a').state).toBe('failed');
    expect(get('a').reason).toBe('weights are corrupt');
    await expect(get('a').acquire()).rejects.toMatchObject({ code: 'model_load_failed' });
    expect(runners.get('a')!.starts).toBe(1);
    expect(events).toEqual(['failed a']);
  });

  it('lets a preloaded model\'s requests wait for boot rather than start a load of their own', async () => {
    const { runners, get } = setup(['a'], { preloaded: true });
    expect(get('a').state).toBe('loading');
    (await get('a').acquire())();
    expect(runners.get('a')!.starts).toBe(0);
    await get('a').boot();
    expect(get('a').state).toBe('ready');
  });
});

describe('LoadBudget', () => {
  it('stops the least recently used idle model to stay within MAX_LOADED_MODELS', async () => {
    const { get, events } = setup(['a', 'b', 'c'], { maxLoaded: 2 });
    (await get('a').acquire())();
    await new Promise((r) => setTimeout(r, 2));
    (await get('b').acquire())();
    (await get('c').acquire())();
    expect(events).toEqual(['loaded a', 'loaded b', 'unloaded a budget', 'loaded c']);
    expect(['a', 'b', 'c'].map((n) => get(n).state)).toEqual(['unloaded', 'ready', 'ready']);
  });

  it('boots preloaded models past MAX_LOADED_MODELS, then makes room at the first load on demand', async () => {
    const { get, events } = setup(['a', 'b', 'c'], { maxLoaded: 1, preloaded: ['a', 'b'] });
    await Promise.all([get('a').boot(), get('b').boot()]);
    expect(['a', 'b'].map((n) => get(n).state)).toEqual(['ready', 'ready']);
    (await get('c').acquire())();
    expect(events.slice(2)).toEqual(['unloaded a budget', 'unloaded b budget', 'loaded c']);
  });

  it('counts models at their expected memory against MEMORY_BUDGET_MB', async () => {
    const { get, events } = setup(['a', 'b', 'c'], { budgetMb: 1_100, estimatedMb: 500 });
    (await get('a').acquire())();
    (await get('b').acquire())();
    (await get('c').acquire())();
    expect(events.filter((e) => e.startsWith('unloaded'))).toEqual(['unloaded a budget']);
  });

  it('refuses a model larger than the whole budget at once, and leaves the loaded ones be', async () => {
    const { get, events } = setup(['a', 'big'], { budgetMb: 1_100, estimatedMb: { a: 500, big: 1_200 } });
    (await get('a').acquire())();
    const err = await get('big').acquire().catch((e: ApiError) => e);
    expect(err).toMatchObject({ kind: 'unavailable', code: 'insufficient_capacity' });
    expect((err as ApiError).message).toContain('needs about 1200 MB, more than all of MEMORY_BUDGET_MB=1100');
    expect(events).toEqual(['loaded a']);
  });

  it('refuses with a 503 that says why when every loaded model is busy or pinned', async () => {
    const { get, runners } = setup(['a', 'b', 'c'], { maxLoaded: 2 });
    await get('a').acquire(); // held, never released
    (await get('b').acquire())();
    get('b').pin(true);
    const err = await get('c').acquire().catch((e: ApiError) => e);
    expect(err).toMatchObject({ kind: 'unavailable', code: 'insufficient_capacity' });
    expect((err as ApiError).message).toContain('MAX_LOADED_MODELS is 2');
    expect(runners.get('c')!.starts).toBe(0);
    expect(get('c').state).toBe('unloaded');
  });
});
