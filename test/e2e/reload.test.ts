import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logLines, MODEL, ROOT, type RunningServer, startServer } from './server.ts';
import { prepareStandins } from './standins.ts';

const RERANKER = 'ms-marco-minilm-l6-v2';

async function listed(server: RunningServer): Promise<Record<string, any>> {
  const body = (await (await fetch(`${server.url}/v1/models`)).json()) as any;
  return Object.fromEntries(body.data.map((m: any) => [m.id, m]));
}

async function until(check: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 200));
  }
}

// The server runs in a folder of its own, whose .env names the models; SIGHUP re-reads it.
describe('SIGHUP reloads the models while clients keep sending', () => {
  let server: RunningServer;
  let dir: string;
  const setModels = (models: string) => writeFileSync(join(dir, '.env'), `MODELS=${models}\n`);

  beforeAll(async () => {
    const prepared = prepareStandins();
    dir = mkdtempSync(join(tmpdir(), 'reload-'));
    setModels(MODEL);
    server = await startServer({
      MODELS: undefined, MODELS_DIR: prepared.modelsDir, MODEL_CONFIG: prepared.catalog,
      RUNNER_PYTHON: join(ROOT, '.venv/bin/python'), WARMUP_STEPS: '1',
    }, 120_000, { cwd: dir });
  }, 130_000);
  afterAll(async () => { expect(await server.stop()).toBe(0); });

  it('adds and removes a model with no failed request', async () => {
    let stop = false;
    const outcomes: number[] = [];
    const client = async () => {
      while (!stop) {
        const res = await fetch(`${server.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ model: MODEL, input: [`reload ${outcomes.length}`, 'a steady stream of requests'] }) });
        outcomes.push(res.status);
        await res.arrayBuffer();
      }
    };
    const clients = Array.from({ length: 4 }, client);

    setModels(`${MODEL},${RERANKER}`);
    server.proc.kill('SIGHUP');
    await until(async () => (await listed(server))[RERANKER]?.state === 'ready', 60_000);
    const ranked = await fetch(`${server.url}/v1/rerank`, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: RERANKER, query: 'q', documents: ['a', 'b'] }) });
    expect(ranked.status).toBe(200);

    setModels(MODEL);
    server.proc.kill('SIGHUP');
    await until(async () => !(RERANKER in (await listed(server))), 30_000);
    await until(async () => logLines(server, 'model_retired').length === 1, 30_000);
    const gone = await fetch(`${server.url}/v1/rerank`, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: RERANKER, query: 'q', documents: ['a'] }) });
    expect(gone.status).toBe(404);

    // The admin route does the same; with nothing changed, it changes nothing.
    const again = await fetch(`${server.url}/admin/reload`, { method: 'POST' });
    expect(await again.json()).toEqual({ added: [], removed: [], replaced: [] });

    stop = true;
    await Promise.all(clients);
    expect(outcomes.length).toBeGreaterThan(20);
    expect(outcomes.filter((s) => s !== 200)).toEqual([]);
    expect(logLines(server, 'reloaded').map((l) => [l.added, l.removed])).toEqual([[[RERANKER], []], [[], [RERANKER]], [[], []]]);
  }, 150_000);
});
