import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logLines, MODEL, type RunningServer, startServer } from './server.ts';
import { prepareStandins } from './standins.ts';

// Five working models and one whose files are broken, under a budget of two loaded at once.
// Only the real MiniLM starts at boot; the stand-ins load on first use. distilbert-sst-2 has a
// catalog keep_alive of 0, so it is stopped as soon as its request is done.
const ROUND = ['all-minilm-l6-v2', 'bge-m3', 'embedding-gemma-300m', 'ms-marco-minilm-l6-v2'];
const IDLE_AT_ONCE = 'distilbert-sst-2';
const BROKEN = 'broken-model';

async function call(server: RunningServer, model: string): Promise<{ status: number; body: any; ms: number }> {
  const [path, body] = model.startsWith('ms-marco')
    ? ['/v1/rerank', { model, query: 'red planet', documents: ['Mars is red.', 'The sea is blue.'] }]
    : model === IDLE_AT_ONCE ? ['/classify', { model, input: ['what a lovely day'] }]
      : ['/v1/embeddings', { model, input: ['which planet is called the red planet'] }];
  const started = performance.now();
  const res = await fetch(server.url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as any, ms: performance.now() - started };
}

async function models(server: RunningServer): Promise<Record<string, any>> {
  const body = (await (await fetch(`${server.url}/v1/models`)).json()) as any;
  return Object.fromEntries(body.data.map((m: any) => [m.id, m]));
}

/** The most models loaded at once, replayed from the gateway's load and unload log lines. */
function mostLoaded(server: RunningServer): number {
  let loaded = 0;
  let most = 0;
  for (const line of server.logs()) {
    const msg = (JSON.parse(line) as { msg?: string }).msg;
    if (msg === 'model_loaded') most = Math.max(most, ++loaded);
    if (msg === 'model_unloaded') loaded -= 1;
  }
  return most;
}

const p = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))]!;

describe('models loaded on demand under MAX_LOADED_MODELS=2', () => {
  let server: RunningServer;

  beforeAll(async () => {
    const prepared = prepareStandins((entries) => {
      entries.find((e) => e.name === IDLE_AT_ONCE)!.keep_alive = 0;
      entries.push({ name: BROKEN, hf_repo_id: 'nobody/broken', handler: 'runner.handlers.sentence_transformer.SentenceTransformerHandler' });
    });
    // Files that exist but do not load: the runner exits with a one-line reason.
    mkdirSync(join(prepared.modelsDir, BROKEN));
    writeFileSync(join(prepared.modelsDir, BROKEN, 'config.json'), '{not json');
    server = await startServer({
      MODELS: [...ROUND, IDLE_AT_ONCE, BROKEN].join(','), MODELS_DIR: prepared.modelsDir, MODEL_CONFIG: prepared.catalog,
      PRELOAD: MODEL, MAX_LOADED_MODELS: '2', WARMUP_STEPS: '1', MAX_CONCURRENT: '1',
    }, 120_000);
  }, 130_000);
  afterAll(async () => { expect(await server.stop()).toBe(0); });

  it('is ready with only the preloaded model up, and lists every servable model with its state', async () => {
    const byId = await models(server);
    expect(Object.keys(byId)).toEqual([...ROUND, IDLE_AT_ONCE, BROKEN]);
    expect(byId[MODEL]).toMatchObject({ state: 'ready', ready: true, keep_alive: -1, pinned: false, devices: ['auto'] });
    expect(byId[MODEL].resident_memory_bytes).toBeGreaterThan(100 * 2 ** 20);
    expect(byId['bge-m3']).toMatchObject({ state: 'unloaded', ready: false, resident_memory_bytes: 0, last_used: null });
    expect(byId[IDLE_AT_ONCE].keep_alive).toBe(0);
    const health = await fetch(`${server.url}/health/ready`);
    expect(health.status).toBe(200);
    expect(((await health.json()) as any).models['bge-m3'].state).toBe('unloaded');
    expect((await fetch(`${server.url}/health/live`)).status).toBe(200);
  });

  it('loads a model once for concurrent first requests', async () => {
    const results = await Promise.all(Array.from({ length: 4 }, () => call(server, 'bge-m3')));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(logLines(server, 'model_loaded').filter((l) => l.model === 'bge-m3')).toHaveLength(1);
  }, 60_000);

  it('serves round-robin requests to more models than fit, evicting the least recently used idle one', async () => {
    const cold: number[] = [];
    const warm: number[] = [];
    // MiniLM and bge-m3 are loaded from the tests before; gemma and the reranker push them out.
    for (const round of [ROUND, ROUND.slice(0, 1)]) {
      for (const model of round) {
        const wasReady = (await models(server))[model].state === 'ready';
        const res = await call(server, model);
        expect(res.status, `${model}: ${JSON.stringify(res.body)}`).toBe(200);
        (wasReady ? warm : cold).push(res.ms);
        // A second request right away finds the model loaded.
        const again = await call(server, model);
        expect(again.status).toBe(200);
        warm.push(again.ms);
      }
    }
    expect(mostLoaded(server)).toBeLessThanOrEqual(2);
    const evictions = logLines(server, 'model_unloaded').filter((l) => l.reason === 'budget').length;
    expect(evictions).toBeGreaterThanOrEqual(3);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/model_unloads_total\{model="[^"]+",reason="budget"\} \d+/);
    expect(metrics).toMatch(/model_resident_memory_bytes\{model="[^"]+"\} [1-9]\d+/);
    console.log(`on-demand: ${cold.length} cold requests p50 ${p(cold, 0.5).toFixed(0)} ms, p99 ${p(cold, 0.99).toFixed(0)} ms; `
      + `${warm.length} warm p50 ${p(warm, 0.5).toFixed(1)} ms, p99 ${p(warm, 0.99).toFixed(1)} ms; ${evictions} evictions`);
  }, 240_000);

  it('stops a keep_alive 0 model as soon as its request is done', async () => {
    const res = await call(server, IDLE_AT_ONCE);
    expect(res.status).toBe(200);
    const deadline = Date.now() + 15_000;
    while ((await models(server))[IDLE_AT_ONCE].state !== 'unloaded' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect((await models(server))[IDLE_AT_ONCE].state).toBe('unloaded');
    expect(logLines(server, 'model_unloaded').filter((l) => l.model === IDLE_AT_ONCE && l.reason === 'idle')).toHaveLength(1);
  }, 60_000);

  it('loads, unloads and pins a model through the admin routes, and refuses to unload one that is serving', async () => {
    const admin = async (model: string, action: string, body: unknown = {}) => {
      const res = await fetch(`${server.url}/admin/models/${model}/${action}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as any };
    };
    expect((await admin(MODEL, 'load')).body).toMatchObject({ id: MODEL, state: 'ready' });
    // A long request holds the model: unloading it now would drop the request, so it is refused.
    const long = fetch(`${server.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: MODEL, input: Array.from({ length: 400 }, (_, i) => `passage ${i} `.repeat(40)) }) });
    await new Promise((r) => setTimeout(r, 300));
    const busy = await admin(MODEL, 'unload');
    expect(busy.status).toBe(409);
    expect(busy.body.error).toMatchObject({ code: 'model_busy' });
    expect((await long).status).toBe(200);
    expect((await admin(MODEL, 'unload')).body).toMatchObject({ state: 'unloaded', resident_memory_bytes: 0 });
    // A preloaded model stopped on purpose loads again on demand: the server stays ready.
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    expect((await admin(MODEL, 'load')).body).toMatchObject({ state: 'ready' });
    expect((await admin(MODEL, 'pin')).body).toMatchObject({ pinned: true });
    // Two other models come and go around it; the pinned one is never the one stopped.
    for (const model of ['bge-m3', 'embedding-gemma-300m']) expect((await call(server, model)).status).toBe(200);
    expect((await models(server))[MODEL]).toMatchObject({ state: 'ready', pinned: true });
    expect((await admin(MODEL, 'pin', { pinned: false })).body).toMatchObject({ pinned: false });
    expect((await admin('no-such-model', 'load')).status).toBe(404);
  }, 120_000);

  it('answers a model that cannot load with a 503 naming why, and keeps serving the others', async () => {
    const [broken, fine] = await Promise.all([call(server, BROKEN), call(server, ROUND[ROUND.length - 1]!)]);
    expect(broken.status).toBe(503);
    expect(broken.body.error).toMatchObject({ code: 'model_load_failed' });
    expect(broken.body.error.message).toContain('modules.json is missing');
    expect(fine.status).toBe(200);
    // Within the hold-down the failure is answered at once, without another attempt.
    const again = await call(server, BROKEN);
    expect(again.status).toBe(503);
    expect(logLines(server, 'model_load_failed').filter((l) => l.model === BROKEN)).toHaveLength(1);
    expect((await models(server))[BROKEN]).toMatchObject({ state: 'failed' });
    expect((await models(server))[BROKEN].reason).toContain('modules.json is missing');
  }, 60_000);
});

describe('a model larger than MEMORY_BUDGET_MB', () => {
  let server: RunningServer;

  beforeAll(async () => {
    // Nothing preloads, so the server is up without a runner; MiniLM's runner alone needs more.
    server = await startServer({ MODELS: MODEL, PRELOAD: '', MEMORY_BUDGET_MB: '64' }, 60_000);
  }, 70_000);
  afterAll(async () => { expect(await server.stop()).toBe(0); });

  it('is refused with a 503 that says why, while the server stays ready', async () => {
    const res = await fetch(`${server.url}/v1/embeddings`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: MODEL, input: 'hello' }),
    });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBeNull(); // retrying would not help
    const { error } = (await res.json()) as any;
    expect(error).toMatchObject({ code: 'insufficient_capacity', type: expect.any(String) });
    expect(error.message).toMatch(/needs about \d+ MB, more than all of MEMORY_BUDGET_MB=64/);
    expect((await fetch(`${server.url}/health/ready`)).status).toBe(200);
    expect((await models(server))[MODEL]).toMatchObject({ state: 'unloaded' });
  });
});
