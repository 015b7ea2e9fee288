import { execFileSync } from 'node:child_process';
import { mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getEncoding } from 'js-tiktoken';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cosine, MODEL, ROOT, startServer, type RunningServer } from './server.ts';

// The request shapes of llama.cpp's and TEI's own documentation, sent as their users send them.
const RERANKER = 'ms-marco-minilm-l6-v2';
let server: RunningServer;

async function post(path: string, body: unknown) {
  const res = await fetch(server.url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as any };
}
const openai = async (input: unknown, extra: object = {}) =>
  (await post('/v1/embeddings', { model: MODEL, input, encoding_format: 'float', ...extra })).body;
const norm = (v: number[]) => Math.hypot(...v);

beforeAll(async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'clients-')), 'models');
  execFileSync(join(ROOT, '.venv/bin/python'), ['scripts/make_standins.py', '--out', dir, 'bge-m3', RERANKER], { cwd: ROOT, stdio: 'ignore' });
  symlinkSync(join(ROOT, 'models', MODEL), join(dir, MODEL));
  // Two embedding models: requests naming none go to DEFAULT_MODEL, as docs/api.md advises.
  server = await startServer({
    MODELS: `${MODEL},bge-m3,${RERANKER}`, MODELS_DIR: dir, WARMUP_STEPS: '1', DEFAULT_MODEL: MODEL,
    MODEL_ALIASES: `text-embedding-3-small=${MODEL}`,
  });
}, 180_000);
afterAll(async () => { await server.stop(); });

describe('llama.cpp routes', () => {
  it('POST /embedding {"content"} gives one nested, L2-normalised vector equal to the OpenAI one', async () => {
    const res = await post('/embedding', { content: 'Hello, my name is' });
    expect(res.status).toBe(200);
    expect(res.body).toHaveLength(1);
    expect(res.body[0].index).toBe(0);
    const [vector] = res.body[0].embedding;
    expect(norm(vector)).toBeCloseTo(1, 5);
    const reference = (await openai('Hello, my name is')).data[0].embedding;
    expect(cosine(vector, reference)).toBeGreaterThanOrEqual(0.99999);
  });

  it('POST /embeddings honours embd_normalize (-1 none, 1 taxicab, 0 max-abs int16)', async () => {
    const raw = (await post('/embeddings', { input: ['a', 'b'], embd_normalize: -1 })).body;
    expect(raw).toHaveLength(2);
    expect(Math.abs(norm(raw[0].embedding[0]) - 1)).toBeGreaterThan(1e-3);
    const taxicab = (await post('/embeddings', { input: 'a', embd_normalize: 1 })).body[0].embedding[0] as number[];
    expect(taxicab.reduce((s, x) => s + Math.abs(x), 0)).toBeCloseTo(1, 5);
    const int16 = (await post('/embeddings', { content: 'a', embd_normalize: 0 })).body[0].embedding[0] as number[];
    expect(Math.max(...int16.map(Math.abs))).toBeCloseTo(32760, 2);
    expect(cosine(int16, raw[0].embedding[0])).toBeGreaterThanOrEqual(0.99999);
  });

  it('POST /reranking (and its aliases) sorts by score and cuts to top_n', async () => {
    const documents = ['hi', 'it is a bear', 'The giant panda, sometimes called a panda bear, is a bear species endemic to China.'];
    for (const path of ['/reranking', '/rerank', '/v1/rerank', '/v1/reranking']) {
      const res = await post(path, { model: RERANKER, query: 'What is panda?', top_n: 2, documents });
      expect(res.status, path).toBe(200);
      expect(res.body.object).toBe('list');
      expect(res.body.results).toHaveLength(2);
      expect(res.body.results[0].relevance_score).toBeGreaterThanOrEqual(res.body.results[1].relevance_score);
      expect(res.body.usage.prompt_tokens).toBeGreaterThan(0);
    }
  });

  it('offers the activation the model does not default to: sigmoid over ms-marco\'s raw logits', async () => {
    const documents = ['pandas are bears', 'bananas'];
    const byDefault = (await post('/v1/rerank', { model: RERANKER, query: 'panda', documents })).body.results;
    const sig = (await post('/v1/rerank', { model: RERANKER, query: 'panda', documents, activation: 'sigmoid' })).body.results;
    const none = (await post('/v1/rerank', { model: RERANKER, query: 'panda', documents, raw_scores: true })).body.results;
    expect(byDefault).toEqual(none); // ms-marco's config names no activation: raw logits
    for (const r of sig) {
      const logit = none.find((x: any) => x.index === r.index).relevance_score;
      expect(r.relevance_score).toBeCloseTo(1 / (1 + Math.exp(-logit)), 6);
    }
  });

  it('POST /tokenize and /detokenize round-trip, with pieces on request', async () => {
    const plain = (await post('/tokenize', { content: 'Hello world' })).body;
    expect(plain.tokens.every((t: unknown) => typeof t === 'number')).toBe(true);
    const pieces = (await post('/tokenize', { content: 'Hello world', with_pieces: true })).body;
    expect(pieces.tokens.map((t: any) => t.piece)).toEqual(['Hello', 'world']);
    const back = (await post('/detokenize', { tokens: plain.tokens })).body;
    expect(back.content).toBe('hello world'); // MiniLM lowercases
    const special = (await post('/tokenize', { content: 'Hello', add_special: true })).body;
    expect(special.tokens.length).toBe(3);
  });
});

describe('TEI routes', () => {
  it('POST /embed {"inputs"} returns bare vectors, normalised unless asked not to', async () => {
    const res = await post('/embed', { inputs: 'What is Deep Learning?' });
    expect(res.status).toBe(200);
    expect(res.body[0]).toHaveLength(384);
    expect(norm(res.body[0])).toBeCloseTo(1, 5);
    const raw = (await post('/embed', { inputs: ['What is Deep Learning?'], normalize: false })).body;
    expect(Math.abs(norm(raw[0]) - 1)).toBeGreaterThan(1e-3);
  });

  it('POST /embed_sparse answers [[{index, value}]] from bge-m3', async () => {
    const res = await post('/embed_sparse', { inputs: ['What is Deep Learning?'] });
    expect(res.status).toBe(200);
    expect(res.body[0].length).toBeGreaterThan(0);
    expect(res.body[0][0]).toEqual({ index: expect.any(Number), value: expect.any(Number) });
  });

  it('POST /rerank {"texts"} returns bare [{index, score, text?}] best first, a sigmoid unless raw_scores', async () => {
    const res = await post('/rerank', { query: 'What is Deep Learning?', texts: ['Deep Learning is not...', 'Deep learning is...'], return_text: true });
    expect(res.status).toBe(200);
    expect(res.body).toHaveLength(2);
    expect(res.body[0].score).toBeGreaterThanOrEqual(res.body[1].score);
    expect(typeof res.body[0].text).toBe('string');
    const raw = (await post('/rerank', { query: 'What is Deep Learning?', texts: ['Deep Learning is not...', 'Deep learning is...'], raw_scores: true })).body;
    for (const r of res.body) {
      const logit = raw.find((x: any) => x.index === r.index).score;
      expect(r.score).toBeCloseTo(1 / (1 + Math.exp(-logit)), 6);
    }
  });

  it('POST /rerank honours truncation_direction Left: an over-long text is cut at its start', async () => {
    const long = 'France is a country whose capital is Paris. '.repeat(80);
    const rank = async (texts: string[], direction: string) => {
      const res = await post('/rerank', { query: 'capital of France', texts, truncate: true, truncation_direction: direction, raw_scores: true });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      return (res.body as { index: number; score: number }[]).sort((a, b) => a.index - b.index).map((r) => r.score);
    };
    // Left keeps the ends, which these two share; Right keeps the starts, which differ.
    const [a, b] = await rank([long + 'Berlin.', 'Opening words. ' + long + 'Berlin.'], 'Left');
    expect(a).toBeCloseTo(b!, 6);
    const [c, d] = await rank([long + 'Berlin.', long + 'Madrid is in Spain.'], 'Left');
    expect(Math.abs(c! - d!)).toBeGreaterThan(1e-6);
  });

  it('POST /tokenize {"inputs"} gives UTF-8 byte spans and null for special tokens; POST /decode inverts it', async () => {
    const text = 'Héllo wörld';
    const tokens = (await post('/tokenize', { inputs: text })).body[0];
    expect(tokens[0]).toMatchObject({ special: true, start: null, stop: null });
    const bytes = Buffer.from(text);
    for (const t of tokens.filter((x: any) => !x.special)) expect(bytes.subarray(t.start, t.stop).toString()).toBe(t.text);
    expect(tokens.at(-2).stop).toBe(bytes.length); // 13 bytes, 11 characters
    const decoded = (await post('/decode', { ids: tokens.map((t: any) => t.id) })).body;
    expect(decoded).toEqual(['hello world']); // MiniLM lowercases and strips accents
  });

  it('GET /info holds every field TEI\'s Info schema requires, for the primary model', async () => {
    const info = (await (await fetch(`${server.url}/info`)).json()) as any;
    const required = ['model_id', 'model_dtype', 'model_type', 'max_concurrent_requests', 'max_input_length', 'max_batch_tokens',
      'max_client_batch_size', 'auto_truncate', 'tokenization_workers', 'version', 'served_model_name'];
    for (const key of required) expect(info[key], key).not.toBeUndefined();
    expect(info).toMatchObject({
      model_id: MODEL, served_model_name: MODEL, model_type: { embedding: { pooling: 'mean' } }, model_dtype: 'float32',
      max_input_length: 256, max_client_batch_size: 2048, auto_truncate: true,
    });
  });

  it('takes the model\'s own token ids on /embed and /embedding: a /tokenize round trip gives the text\'s vector', async () => {
    const text = 'Token ids from our own tokenizer';
    const ids = (await post('/tokenize', { inputs: text })).body[0].map((t: any) => t.id);
    const fromText = (await post('/embed', { inputs: text })).body[0];
    const single = (await post('/embed', { inputs: ids })).body;
    const batch = (await post('/embed', { inputs: [ids, ids] })).body;
    expect(single).toHaveLength(1);
    expect(batch).toHaveLength(2);
    expect(cosine(single[0], fromText)).toBeGreaterThanOrEqual(0.99999);
    const llamaIds = (await post('/tokenize', { content: text, add_special: true })).body.tokens;
    const llama = (await post('/embedding', { content: llamaIds })).body[0].embedding[0];
    expect(cosine(llama, fromText)).toBeGreaterThanOrEqual(0.99999);
    const mixed = await post('/embed', { inputs: ['text', ids] });
    expect(mixed.status).toBe(400);
    expect(mixed.body.error.message).toContain('one kind per request');
  });

  it('POST /similarity gives the cosine of each sentence with the source, as /v1/embeddings vectors do', async () => {
    const sentences = ['A man is eating food.', 'A man is riding a horse.'];
    const res = await post('/similarity', { inputs: { source_sentence: 'A man is eating pasta.', sentences } });
    expect(res.status).toBe(200);
    const vectors = (await openai(['A man is eating pasta.', ...sentences])).data.map((d: any) => d.embedding);
    res.body.forEach((score: number, i: number) => expect(score).toBeCloseTo(cosine(vectors[0], vectors[i + 1]), 5));
    const long = 'word '.repeat(400);
    const refused = await post('/similarity', { inputs: { source_sentence: 'a', sentences: ['b', long] }, parameters: { truncate: false } });
    expect(refused.status).toBe(400);
    expect(refused.body.error).toMatchObject({ param: 'inputs', code: 'input_too_long' });
    expect(refused.body.error.message).toMatch(/^inputs\.sentences\[1\] has \d+ tokens/);
  });

  it('POST /embed_all gives every token\'s vector; their mean is the pooled embedding', async () => {
    const text = 'Mean pooling over token states';
    const res = await post('/embed_all', { inputs: [text] });
    expect(res.status).toBe(200);
    const tokens = (await post('/tokenize', { inputs: text })).body[0];
    const states = res.body[0] as number[][];
    expect(states).toHaveLength(tokens.length);
    const mean = states[0]!.map((_, d) => states.reduce((sum, row) => sum + row[d]!, 0) / states.length);
    expect(cosine(mean, (await post('/embed', { inputs: text })).body[0])).toBeGreaterThanOrEqual(0.99999);
  });

  it('POST / serves the primary model\'s kind: embed, similarity, or rerank by the body', async () => {
    const embed = await post('/', { inputs: 'What is Deep Learning?' });
    expect(embed.body).toEqual((await post('/embed', { inputs: 'What is Deep Learning?' })).body);
    const similar = await post('/', { inputs: { source_sentence: 'a cat', sentences: ['a cat', 'a car'] } });
    expect(similar.body[0]).toBeCloseTo(1, 5);
    const ranked = await post('/', { query: 'What is Deep Learning?', texts: ['bananas', 'Deep learning is...'], top_n: 1 });
    expect(ranked.body).toHaveLength(1);
  });

  it('POST /rerank {"texts"} honours top_n', async () => {
    const texts = ['a', 'b', 'c', 'd'];
    for (const [topN, length] of [[undefined, 4], [2, 2], [99, 4]] as const) {
      expect((await post('/rerank', { query: 'q', texts, top_n: topN })).body, String(topN)).toHaveLength(length);
    }
  });
});

describe('model selection and POST /embeddings', () => {
  it('answers /v1/embeddings without `model` with DEFAULT_MODEL, and an alias with its model', async () => {
    const none = await post('/v1/embeddings', { input: 'hello' });
    expect(none.status).toBe(200);
    expect(none.body.model).toBe(MODEL);
    const alias = await post('/v1/embeddings', { input: 'hello', model: 'text-embedding-3-small' });
    expect(alias.body.model).toBe(MODEL);
    expect(alias.body.data[0].embedding).toEqual(none.body.data[0].embedding);
    const unknown = await post('/v1/embeddings', { input: 'hello', model: 'text-embedding-3-large' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatchObject({ type: 'invalid_request_error', code: 'model_not_found', param: 'model' });
    const models = (await (await fetch(`${server.url}/v1/models`)).json()) as any;
    expect(models.data.find((m: any) => m.id === 'text-embedding-3-small')).toMatchObject({ alias_of: MODEL, dimensions: 384 });
  });

  it('gives the openai SDK pointed at a base URL without /v1 OpenAI\'s shape on /embeddings', async () => {
    const client = new OpenAI({ apiKey: 'unused', baseURL: server.url });
    const res = await client.embeddings.create({ model: MODEL, input: ['hello', 'world'] });
    expect(res.object).toBe('list');
    expect(res.data).toHaveLength(2);
    const want = (await openai(['hello', 'world'])).data;
    res.data.forEach((d, i) => expect(cosine(d.embedding, want[i].embedding)).toBeGreaterThanOrEqual(0.99999));
    // llama.cpp's own clients send `input` alone, or `content`, and keep llama.cpp's list.
    expect(Array.isArray((await post('/embeddings', { input: 'hello' })).body)).toBe(true);
  });
});

describe('OpenAI extras', () => {
  const texts = ['The food was delicious and the waiter...', 'Embeddings from token ids'];

  it('reads token-id inputs as OpenAI cl100k_base ids by default: the same vectors as the text', async () => {
    const enc = getEncoding('cl100k_base');
    const fromIds = await openai(texts.map((t) => enc.encode(t)));
    const fromText = await openai(texts);
    fromIds.data.forEach((d: any, i: number) => expect(d.embedding).toEqual(fromText.data[i].embedding));
    const single = await openai(enc.encode(texts[0]!));
    expect(single.data[0].embedding).toEqual(fromText.data[0].embedding);
  });

  it('reads the model\'s own ids with tokenizer=model, and refuses ids outside its vocabulary', async () => {
    const tokens = (await post('/tokenize', { content: texts[0], add_special: true })).body.tokens as number[];
    const fromIds = await openai([tokens], { tokenizer: 'model' });
    const fromText = await openai([texts[0]]);
    expect(cosine(fromIds.data[0].embedding, fromText.data[0].embedding)).toBeGreaterThanOrEqual(0.99999);
    const bad = await post('/v1/embeddings', { model: MODEL, input: [[101, 40_000]], tokenizer: 'model' });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('invalid_token_ids');
  });

  it('truncates on the requested side, or refuses when truncate is false', async () => {
    const long = Array.from({ length: 400 }, (_, i) => `word${i}`).join(' ');
    const right = (await openai(long)).data[0].embedding;
    const left = (await openai(long, { truncation_direction: 'left' })).data[0].embedding;
    expect(cosine(left, right)).toBeLessThan(0.999);
    const refused = await post('/v1/embeddings', { model: MODEL, input: long, truncate: false });
    expect(refused.status).toBe(400);
    expect(refused.body.error.message).toContain('more than this model');
  });

  it('returns the unnormalised vector with normalize=false', async () => {
    const raw = (await openai('hello', { normalize: false })).data[0].embedding;
    expect(Math.abs(norm(raw) - 1)).toBeGreaterThan(1e-3);
  });
});
