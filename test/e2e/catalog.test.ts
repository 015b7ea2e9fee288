import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cosine, ROOT, type RunningServer, startServer } from './server.ts';
import { prepareStandins } from './standins.ts';

// Every architecture of the catalog at once, in one process tree: the real MiniLM and the
// tiny stand-ins of the others (scripts/make_standins.py), each under its catalog name.
const MODELS = ['all-minilm-l6-v2', 'bge-m3', 'embedding-gemma-300m', 'bge-reranker-v2-m3', 'ms-marco-minilm-l6-v2'];
const PYTHON = join(ROOT, '.venv/bin/python');
const TEXTS = ['which planet is called the red planet', 'Mars looks red because of iron oxide dust.'];

async function post(server: RunningServer, path: string, body: unknown) {
  const res = await fetch(server.url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as any };
}


describe('the whole catalog served side by side', () => {
  let server: RunningServer;
  let modelsDir: string;

  beforeAll(async () => {
    const prepared = prepareStandins();
    modelsDir = prepared.modelsDir;
    server = await startServer({
      MODELS: MODELS.join(','), MODELS_DIR: modelsDir, MODEL_CONFIG: prepared.catalog, WARMUP_STEPS: '1', MAX_CONCURRENT: '1',
    }, 170_000);
  }, 180_000);
  afterAll(async () => { expect(await server.stop()).toBe(0); });

  it('lists every model with what it can do', async () => {
    const body = (await (await fetch(`${server.url}/v1/models`)).json()) as any;
    const byId = Object.fromEntries(body.data.map((m: any) => [m.id, m]));
    expect(Object.keys(byId)).toEqual(MODELS);
    expect(byId['bge-m3'].capabilities).toEqual(['text-embedding', 'sparse-embedding', 'multi-vector']);
    expect(byId['embedding-gemma-300m']).toMatchObject({ dimensions: 64, matryoshka_dims: [32, 16, 8] });
    expect(byId['embedding-gemma-300m'].prompt_names).toContain('query');
    expect(byId['ms-marco-minilm-l6-v2']).toMatchObject({ capabilities: ['rerank'], dimensions: 0 });
  });

  it('answers each embedding model under its own name', async () => {
    const sizes: Record<string, number> = { 'all-minilm-l6-v2': 384, 'bge-m3': 64, 'embedding-gemma-300m': 64 };
    const vectors: number[][] = [];
    for (const [model, size] of Object.entries(sizes)) {
      const res = await post(server, '/v1/embeddings', { model, input: TEXTS });
      expect(res.status, model).toBe(200);
      expect(res.body.model).toBe(model);
      expect(res.body.data[0].embedding).toHaveLength(size);
      vectors.push(res.body.data[0].embedding);
    }
    expect(cosine(vectors[1]!, vectors[2]!)).toBeLessThan(0.99); // two different 64-wide models
  });

  it('gives embedding-gemma its document prompt by default and the query prompt on request, as sentence-transformers does', async () => {
    const gemma = join(modelsDir, 'embedding-gemma-300m');
    for (const [extra, prompt] of [[{}, 'document'], [{ input_type: 'query' }, 'query'], [{ prompt_name: 'STS' }, 'STS']] as const) {
      const want = JSON.parse(execFileSync(PYTHON, ['test/e2e/reference_embed.py', gemma, prompt], {
        cwd: ROOT, input: JSON.stringify(TEXTS), env: { ...process.env, HF_HUB_OFFLINE: '1', TRANSFORMERS_VERBOSITY: 'error' },
      }).toString()) as number[][];
      const res = await post(server, '/v1/embeddings', { model: 'embedding-gemma-300m', input: TEXTS, ...extra });
      res.body.data.forEach((d: any, i: number) => expect(cosine(d.embedding, want[i]!)).toBeGreaterThanOrEqual(0.9999));
    }
  });

  it('cuts embedding-gemma to a Matryoshka size and refuses others, naming the sizes', async () => {
    const res = await post(server, '/v1/embeddings', { model: 'embedding-gemma-300m', input: TEXTS, dimensions: 16 });
    expect(res.body.data[0].embedding).toHaveLength(16);
    const norm = Math.hypot(...(res.body.data[0].embedding as number[]));
    expect(norm).toBeCloseTo(1, 5);
    const bad = await post(server, '/v1/embeddings', { model: 'embedding-gemma-300m', input: TEXTS, dimensions: 12 });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ param: 'dimensions', code: 'unsupported_dimensions', message: expect.stringContaining('supported: 64, 32, 16, 8') });
  });

  it('refuses a prompt the model lacks, also on a model with no prompts at all', async () => {
    for (const model of ['embedding-gemma-300m', 'bge-m3']) {
      const bad = await post(server, '/v1/embeddings', { model, input: TEXTS, prompt_name: 'nope' });
      expect(bad.status, model).toBe(400);
      expect(bad.body.error, model).toMatchObject({ param: 'prompt_name', code: 'unsupported_prompt_name', message: expect.stringContaining("unknown prompt_name 'nope'") });
    }
  });

  it('serves bge-m3 sparse and ColBERT outputs', async () => {
    const sparse = await post(server, '/v1/embeddings', { model: 'bge-m3', input: TEXTS, embedding_type: 'sparse' });
    expect(sparse.status).toBe(200);
    const first = sparse.body.data[0].embedding;
    expect(first.indices.length).toBe(first.values.length);
    expect(first.indices.length).toBeGreaterThan(0);
    expect([...first.indices].sort((a: number, b: number) => a - b)).toEqual(first.indices);
    const colbert = await post(server, '/v1/embeddings', { model: 'bge-m3', input: TEXTS[0], embedding_type: 'colbert' });
    const matrix = colbert.body.data[0].embedding as number[][];
    expect(matrix[0]).toHaveLength(64);
    expect(matrix).toHaveLength(colbert.body.usage.prompt_tokens - 1); // every token but [CLS]
    const asB64 = await post(server, '/v1/embeddings', { model: 'bge-m3', input: TEXTS[0], embedding_type: 'colbert', encoding_format: 'base64' });
    expect(Buffer.from(asB64.body.data[0].embedding, 'base64').length).toBe(matrix.length * 64 * 4);
    const notHere = await post(server, '/v1/embeddings', { model: 'embedding-gemma-300m', input: TEXTS, embedding_type: 'sparse' });
    expect(notHere.status).toBe(400);
    expect(notHere.body.error.code).toBe('unsupported_model_capability');
  });

  it('reranks with both cross-encoders, best first, and keeps embedders and rerankers apart', async () => {
    const documents = ['Mars is the red planet.', 'Bananas are yellow.', { text: 'The red planet is Mars.' }];
    for (const model of ['bge-reranker-v2-m3', 'ms-marco-minilm-l6-v2']) {
      const res = await post(server, '/v1/rerank', { model, query: 'red planet', documents, top_n: 2, return_documents: true });
      expect(res.status, model).toBe(200);
      expect(res.body.results).toHaveLength(2);
      expect(res.body.results[0].relevance_score).toBeGreaterThanOrEqual(res.body.results[1].relevance_score);
      expect(typeof res.body.results[0].document.text).toBe('string');
      expect(res.body.usage.total_tokens).toBeGreaterThan(0);
    }
    const calibrated = await post(server, '/v1/rerank', { model: 'bge-reranker-v2-m3', query: 'red planet', documents });
    const raw = await post(server, '/v1/rerank', { model: 'bge-reranker-v2-m3', query: 'red planet', documents, raw_scores: true });
    for (const r of calibrated.body.results) {
      expect(r.relevance_score).toBeGreaterThan(0);
      expect(r.relevance_score).toBeLessThan(1);
      const rawScore = raw.body.results.find((x: any) => x.index === r.index).relevance_score;
      expect(r.relevance_score).toBeCloseTo(1 / (1 + Math.exp(-rawScore)), 5);
    }
    const wrongWay = await post(server, '/v1/embeddings', { model: 'ms-marco-minilm-l6-v2', input: 'x' });
    expect(wrongWay.status).toBe(400);
    const wrongOther = await post(server, '/v1/rerank', { model: 'bge-m3', query: 'q', documents: ['d'] });
    expect(wrongOther.status).toBe(400);
    expect(wrongOther.body.error.code).toBe('unsupported_model_capability');
  });
});
