import { request } from 'node:http';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cosine, MODEL, reference, type RunningServer, startServer } from './server.ts';

const TEXTS = [
  'hello world',
  'The quick brown fox jumps over the lazy dog.',
  'Embeddings map text to vectors so that similar meanings land close together.',
  'Ünïcödé, emoji 🚀 and CJK 漢字 survive the trip.',
  'A long passage. '.repeat(200), // far past the 256-token limit: truncated like the reference
];

/**
 * POSTs a body the server may answer before reading it all. fetch then fails with EPIPE when the
 * server closes the socket mid-upload, depending on timing; node:http still delivers the answer.
 */
/**
 * Announces the whole body but sends only its first 64 KiB, then waits: the server must answer
 * from the announced length alone. Sending all of it races the server's early close, which can
 * reset the connection before its answer is read; an error before the answer fails the test.
 */
function postEarlyAnswered(server: RunningServer, path: string, body: string): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(server.url + path, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => {
        resolve({ status: res.statusCode!, body: JSON.parse(text) });
        req.destroy();
      });
    });
    req.on('error', reject); // a no-op once resolved
    req.write(body.slice(0, 64 * 1024));
  });
}

async function post(server: RunningServer, path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(server.url + path, {
    method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as any };
}

describe('POST /v1/embeddings against the real runner', () => {
  let server: RunningServer;
  let expected: number[][];

  beforeAll(async () => {
    [server, expected] = await Promise.all([startServer(), Promise.resolve().then(() => reference(TEXTS))]);
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
  });

  it('matches in-process sentence-transformers (cosine >= 0.99999)', async () => {
    const { status, body } = await post(server, '/v1/embeddings', { model: MODEL, input: TEXTS });
    expect(status).toBe(200);
    expect(body.object).toBe('list');
    expect(body.model).toBe(MODEL);
    expect(body.data).toHaveLength(TEXTS.length);
    body.data.forEach((d: any, i: number) => {
      expect(d).toMatchObject({ object: 'embedding', index: i });
      expect(d.embedding).toHaveLength(384);
      expect(cosine(d.embedding, expected[i]!)).toBeGreaterThanOrEqual(0.99999);
    });
    // Token counts include [CLS]/[SEP]; the long text is cut at the model's 256 tokens.
    expect(body.usage.prompt_tokens).toBe(body.usage.total_tokens);
    expect(body.usage.prompt_tokens).toBeGreaterThan(256);
  });

  it('answers a single string input with one vector', async () => {
    const { status, body } = await post(server, '/v1/embeddings', { model: MODEL, input: TEXTS[1] });
    expect(status).toBe(200);
    expect(body.data).toHaveLength(1);
    expect(cosine(body.data[0].embedding, expected[1]!)).toBeGreaterThanOrEqual(0.99999);
  });

  it('base64 decodes to exactly the float answer', async () => {
    const [asFloat, asB64] = await Promise.all([
      post(server, '/v1/embeddings', { model: MODEL, input: TEXTS.slice(0, 3), encoding_format: 'float' }),
      post(server, '/v1/embeddings', { model: MODEL, input: TEXTS.slice(0, 3), encoding_format: 'base64' }),
    ]);
    expect(asB64.status).toBe(200);
    asB64.body.data.forEach((d: any, i: number) => {
      expect(typeof d.embedding).toBe('string');
      const bytes = Buffer.from(d.embedding, 'base64');
      const decoded = Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4));
      expect(decoded).toEqual(asFloat.body.data[i].embedding);
    });
  });

  it('works with the official openai npm SDK on its default settings (base64)', async () => {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'not-needed' });
    const res = await client.embeddings.create({ model: MODEL, input: TEXTS.slice(0, 4) });
    expect(res.data).toHaveLength(4);
    res.data.forEach((d, i) => {
      // A server that ignored base64 would hand the SDK a quarter-length vector here.
      expect(d.embedding).toHaveLength(384);
      expect(cosine(d.embedding, expected[i]!)).toBeGreaterThanOrEqual(0.99999);
    });
    expect(res.usage.prompt_tokens).toBeGreaterThan(0);
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual([MODEL]);
  });

  it('lists the model with its dimensions', async () => {
    const body = (await (await fetch(`${server.url}/v1/models`)).json()) as any;
    expect(body).toMatchObject({ object: 'list', data: [{ id: MODEL, object: 'model', dimensions: 384, max_tokens: 256, ready: true }] });
  });

  it('answers bad input with OpenAI-shaped 4xx errors, never a 500', async () => {
    const cases: [unknown, number, string | null][] = [
      [{ model: 'nope', input: 'x' }, 404, 'model'],
      [{ model: MODEL, input: '' }, 400, 'input'],
      [{ model: MODEL, input: [] }, 400, 'input'],
      [{ model: MODEL, input: [1, 'two'] }, 400, 'input'],
      [{ model: MODEL, input: [9_999_999] }, 400, 'input'],
      [{ model: MODEL, input: { text: 'x' } }, 400, 'input'],
      [{ model: MODEL }, 400, 'input'],
      [{ input: 'x', model: '' }, 400, 'model'],
      [{ model: MODEL, input: 'x', encoding_format: 'int16' }, 400, 'encoding_format'],
      [{ model: MODEL, input: 'x', dimensions: 128 }, 400, 'dimensions'],
      [{ model: MODEL, input: 'x'.repeat(20_001) }, 400, 'input'],
      [{ model: MODEL, input: Array(2049).fill('x') }, 400, 'input'],
      ['just a string', 400, null],
    ];
    for (const [body, status, param] of cases) {
      const res = await post(server, '/v1/embeddings', body);
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(status);
      expect(res.body.error.param).toBe(param);
      expect(res.body.error.type).toBe(status === 404 ? 'invalid_request_error' : 'invalid_request_error');
      expect(res.body.error.message.length).toBeGreaterThan(5);
    }
    const badJson = await fetch(`${server.url}/v1/embeddings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model":' });
    expect(badJson.status).toBe(400);
    expect(((await badJson.json()) as any).error.type).toBe('invalid_request_error');
  });

  it('answers 413 for a body over MAX_REQUEST_BYTES', async () => {
    const huge = JSON.stringify({ model: MODEL, input: 'x'.repeat(17 * 1024 * 1024) });
    const res = await postEarlyAnswered(server, '/v1/embeddings', huge);
    expect(res.status).toBe(413);
    expect(res.body.error.code).toBe('request_too_large');
  });

  it('echoes a valid X-Request-Id and replaces an invalid one', async () => {
    const mine = await post(server, '/v1/embeddings', { model: MODEL, input: 'id test' }, { 'x-request-id': 'trace-123' });
    expect(mine.headers.get('x-request-id')).toBe('trace-123');
    const bad = await post(server, '/v1/embeddings', { model: MODEL, input: 'id test' }, { 'x-request-id': 'no spaces allowed' });
    expect(bad.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('serves Prometheus metrics and health', async () => {
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toContain(`runner_up{model="${MODEL}",device="auto",runner="0"} 1`);
    expect(metrics).toMatch(/http_requests_total\{route="\/v1\/embeddings",model="all-minilm-l6-v2",status="200"\} \d+/);
    const health = await fetch(`${server.url}/health`);
    expect(health.status).toBe(200);
  });
});
