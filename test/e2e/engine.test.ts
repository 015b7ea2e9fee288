import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cosine, logLines, MODEL, type RunningServer, startServer } from './server.ts';

const PASSAGE = 'Micro-batching coalesces concurrent requests into one forward pass of the model. ';

async function embed(server: RunningServer, input: string[], init: RequestInit & { headers?: Record<string, string> } = {}) {
  const res = await fetch(`${server.url}/v1/embeddings`, {
    method: 'POST',
    body: JSON.stringify({ model: MODEL, input }),
    ...init,
    headers: { 'content-type': 'application/json', ...init.headers },
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as any };
}

/** The value of one sample line of /metrics, 0 if absent. */
async function metric(server: RunningServer, sample: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line ? Number(line.slice(sample.length + 1)) : 0;
}

const calls = (s: RunningServer) => metric(s, `runner_calls_total{model="${MODEL}",outcome="ok"}`);
const batchedInputs = (s: RunningServer) => metric(s, `embedding_batch_size_inputs_sum{model="${MODEL}"}`);


describe('micro-batching and disconnects (cache off, one call in flight)', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ EMBEDDING_CACHE_SIZE: '0', MAX_CONCURRENT: '1', BATCH_WINDOW_MS: '5' });
  });
  afterAll(async () => { await server.stop(); });

  it('serves N concurrent one-input requests with fewer than N runner calls, each with its own vector', async () => {
    const texts = Array.from({ length: 16 }, (_, i) => `request ${i}: ${PASSAGE.repeat(1 + (i % 4))}`);
    const before = await calls(server);
    const together = await Promise.all(texts.map((t) => embed(server, [t])));
    const used = (await calls(server)) - before;
    expect(used).toBeLessThan(texts.length);
    const histogram = await metric(server, `embedding_batch_size_inputs_bucket{le="1",model="${MODEL}"}`);
    expect(histogram).toBeLessThan(used); // some calls carried more than one input

    for (const [i, text] of texts.entries()) {
      expect(together[i]!.status).toBe(200);
      const alone = await embed(server, [text]);
      expect(cosine(together[i]!.body.data[0].embedding, alone.body.data[0].embedding)).toBeGreaterThanOrEqual(0.99999);
      expect(together[i]!.body.usage).toEqual(alone.body.usage);
    }
  });

  it('drops a queued request whose client disconnected before it reaches the runner', async () => {
    const heavy = embed(server, Array.from({ length: 96 }, (_, i) => `${i} ${PASSAGE.repeat(8)}`));
    await new Promise((r) => setTimeout(r, 100));
    const controller = new AbortController();
    const gone = embed(server, ['this text must never reach the runner'], { signal: controller.signal, headers: { 'x-request-id': 'gone-1' } })
      .catch((err: Error) => err);
    await new Promise((r) => setTimeout(r, 100));
    controller.abort();
    expect(await gone).toBeInstanceOf(Error);
    expect((await heavy).status).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    const runnerIds = logLines(server, 'batch_done').map((l) => String(l.request_id));
    expect(runnerIds.length).toBeGreaterThan(0);
    expect(runnerIds.some((ids) => ids.split(',').includes('gone-1'))).toBe(false);
  });
});

describe('admission control', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ EMBEDDING_CACHE_SIZE: '0', MAX_CONCURRENT: '1', MAX_QUEUE_SIZE: '2', BATCH_WINDOW_MAX_SIZE: '16' });
  });
  afterAll(async () => { await server.stop(); });

  it('answers a burst past MAX_CONCURRENT + MAX_QUEUE_SIZE with 429 and Retry-After, and completes every admitted request', async () => {
    const burst = await Promise.all(Array.from({ length: 20 }, (_, r) =>
      embed(server, Array.from({ length: 16 }, (_, i) => `burst ${r}.${i} ${PASSAGE.repeat(6)}`))));
    const ok = burst.filter((b) => b.status === 200);
    const refused = burst.filter((b) => b.status === 429);
    expect(ok.length + refused.length).toBe(20);
    expect(ok.length).toBeGreaterThanOrEqual(3);
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) {
      expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(r.body.error).toMatchObject({ type: 'rate_limit_exceeded', code: 'queue_full' });
    }
    for (const r of ok) expect(r.body.data).toHaveLength(16);
    expect(await metric(server, `embedding_rejected_total{model="${MODEL}",reason="queue_full"}`)).toBe(refused.length);
  });

  it('never refuses requests that stay within the limits', async () => {
    for (let i = 0; i < 3; i++) {
      const pair = await Promise.all([embed(server, [`calm ${i}`]), embed(server, [`calm ${i}b`])]);
      expect(pair.map((p) => p.status)).toEqual([200, 200]);
    }
  });
});

describe('cache, usage and request ids', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({ EMBEDDING_CACHE_SIZE: '64' });
  });
  afterAll(async () => { await server.stop(); });

  it('answers a repeated input from the cache without calling the runner, with the same usage', async () => {
    const first = await embed(server, ['cached sentence one']);
    const callsBefore = await calls(server);
    const hitsBefore = await metric(server, `embedding_cache_hits_total{model="${MODEL}"}`);
    const again = await embed(server, ['cached sentence one']);
    expect(await calls(server)).toBe(callsBefore);
    expect(await metric(server, `embedding_cache_hits_total{model="${MODEL}"}`)).toBe(hitsBefore + 1);
    expect(again.body.data[0].embedding).toEqual(first.body.data[0].embedding);
    expect(again.body.usage).toEqual(first.body.usage);
  });

  it('sends only the misses of a mixed batch to the runner', async () => {
    await embed(server, ['mixed alpha', 'mixed beta']);
    const inputsBefore = await batchedInputs(server);
    const missesBefore = await metric(server, `embedding_cache_misses_total{model="${MODEL}"}`);
    const res = await embed(server, ['mixed alpha', 'mixed gamma', 'mixed beta', 'mixed gamma']);
    expect(res.body.data).toHaveLength(4);
    expect(res.body.data[1].embedding).toEqual(res.body.data[3].embedding);
    expect((await batchedInputs(server)) - inputsBefore).toBe(1); // gamma, once
    expect((await metric(server, `embedding_cache_misses_total{model="${MODEL}"}`)) - missesBefore).toBe(2);
  });

  it('carries X-Request-Id into the response, the gateway log and the runner log', async () => {
    const res = await embed(server, ['trace me through both processes'], { headers: { 'x-request-id': 'trace-abc-123' } });
    expect(res.headers.get('x-request-id')).toBe('trace-abc-123');
    await new Promise((r) => setTimeout(r, 200));
    const gatewayLine = logLines(server, 'embedding_request').find((l) => l.request_id === 'trace-abc-123');
    expect(gatewayLine).toMatchObject({ model: MODEL, inputs: 1, cache_hits: 0, status: 200 });
    expect(gatewayLine!.tokens).toBe(res.body.usage.prompt_tokens);
    const runnerLine = logLines(server, 'batch_done').find((l) => String(l.request_id).split(',').includes('trace-abc-123'));
    expect(runnerLine).toMatchObject({ runner: MODEL, model: MODEL });
  });

  it('writes each key once on re-emitted runner lines: the runner\'s own device is runner_device', () => {
    const raw = server.logs().find((l) => l.includes('"msg":"serving"'))!;
    expect(raw.match(/"device":/g)).toHaveLength(1);
    expect(JSON.parse(raw)).toMatchObject({ device: 'auto', runner_device: 'cpu' });
  });

  it('reports queue depth, time histograms and runner-side timings', async () => {
    const text = await (await fetch(`${server.url}/metrics`)).text();
    for (const name of ['embedding_queue_depth', 'embedding_queue_seconds_count', 'embedding_inference_seconds_count',
      'http_request_duration_seconds_count', 'runner_compute_seconds_count', 'embedding_batch_size_tokens_count']) {
      expect(text).toContain(name);
    }
  });
});
