import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cosine, ROOT, type RunningServer, startServer } from './server.ts';

const PYTHON = join(ROOT, '.venv/bin/python');
const TEXTS = ['a folder of my own', 'served without a catalog entry'];

// Folders copied by hand, under names of the user's choosing, served through the README's
// serve.sh with the Hub unreachable: an embedding model and a reranker.
describe('MODELS=name=folder through serve.sh, offline', () => {
  let server: RunningServer;
  let embedder: string;

  beforeAll(async () => {
    const built = join(mkdtempSync(join(tmpdir(), 'own-')), 'built');
    execFileSync(PYTHON, ['scripts/make_standins.py', '--out', built], { cwd: ROOT, stdio: 'ignore' });
    const mine = mkdtempSync(join(tmpdir(), 'copied by hand '));
    embedder = join(mine, 'my-embedder');
    cpSync(join(built, 'bge-small-en-v1.5'), embedder, { recursive: true });
    cpSync(join(built, 'ms-marco-minilm-l6-v2'), join(mine, 'ranker'), { recursive: true });
    server = await startServer({
      MODELS: `mine=${embedder},my-ranker=${join(mine, 'ranker')}`, WARMUP_STEPS: '1',
      HF_HUB_OFFLINE: '1', HF_ENDPOINT: 'http://127.0.0.1:9',
    }, 170_000, { command: ['bash', 'scripts/serve.sh'] });
  }, 180_000);
  afterAll(async () => { expect(await server.stop()).toBe(0); });

  it('serves the folders under their own names, each with the handler its files call for', async () => {
    const listed = (await (await fetch(`${server.url}/v1/models`)).json()) as any;
    const byId = Object.fromEntries(listed.data.map((m: any) => [m.id, m]));
    expect(byId.mine).toMatchObject({ state: 'ready', capabilities: ['text-embedding'] });
    expect(byId['my-ranker']).toMatchObject({ state: 'ready', capabilities: ['rerank'] });

    const res = await fetch(`${server.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'mine', input: TEXTS }) });
    expect(res.status).toBe(200);
    const got = ((await res.json()) as any).data.map((d: any) => d.embedding as number[]);
    const want = JSON.parse(execFileSync(PYTHON, ['test/e2e/reference_embed.py', embedder], {
      cwd: ROOT, input: JSON.stringify(TEXTS), env: { ...process.env, HF_HUB_OFFLINE: '1', TRANSFORMERS_VERBOSITY: 'error' },
    }).toString()) as number[][];
    got.forEach((v: number[], i: number) => expect(cosine(v, want[i]!)).toBeGreaterThanOrEqual(0.9999));

    const ranked = await fetch(`${server.url}/v1/rerank`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'my-ranker', query: 'q', documents: TEXTS }) });
    expect(ranked.status).toBe(200);
  });
});
