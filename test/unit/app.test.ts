import { afterEach, describe, expect, it } from 'vitest';
import { testApp as app } from './test-app.ts';

let current: ReturnType<typeof app> | undefined;
afterEach(async () => current?.close());

describe('HTTP app before the runners are ready', () => {
  it('reports 503 on /health with the state of every runner', async () => {
    current = app();
    const res = await current.inject({ method: 'GET', url: '/health' });
    expect(res.statusCode).toBe(503);
    expect(res.headers['retry-after']).toBe('2');
    const runners = [{ device: 'auto', state: 'down', restarts: 0 }];
    expect(res.json()).toEqual({ status: 'unavailable', models: { m1: { state: 'loading', reason: null, runners }, m2: { state: 'loading', reason: null, runners } } });
    expect((await current.inject({ method: 'GET', url: '/health/ready' })).statusCode).toBe(503);
    expect((await current.inject({ method: 'GET', url: '/health/live' })).json()).toEqual({ status: 'ok' });
  });

  it('is ready without the models that load on demand, which it lists as unloaded', async () => {
    current = app({ PRELOAD: '' });
    const res = await current.inject({ method: 'GET', url: '/health' });
    expect(res.statusCode).toBe(200);
    expect(res.json().models.m1).toMatchObject({ state: 'unloaded', reason: null });
    const listed = (await current.inject({ method: 'GET', url: '/v1/models' })).json().data;
    expect(listed[0]).toMatchObject({ id: 'm1', state: 'unloaded', ready: false, resident_memory_bytes: 0, last_used: null, keep_alive: -1, pinned: false });
    await current.close();
    current = app({ PRELOAD: 'm2' });
    expect((await current.inject({ method: 'GET', url: '/health' })).statusCode).toBe(503);
  });

  it('answers embeddings with 503 and Retry-After, and unknown models with 404 naming the served ones', async () => {
    current = app();
    const down = await current.inject({ method: 'POST', url: '/v1/embeddings', payload: { model: 'm1', input: 'x' } });
    expect(down.statusCode).toBe(503);
    expect(down.headers['retry-after']).toBe('2');
    expect(down.json().error).toMatchObject({ type: 'service_unavailable', code: 'model_unavailable' });
    const unknown = await current.inject({ method: 'POST', url: '/v1/embeddings', payload: { model: 'zz', input: 'x' } });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.json().error.message).toContain('Served models: m1, m2');
  });

  it('reads null as absent in every optional field, nested ones too, and a null required field as missing', async () => {
    current = app();
    const nulls = { model: 'm1', input: 'x', dimensions: null, user: null, prompt_name: null, truncate: null, encoding_format: null };
    // Past validation, the request meets the model that is not up yet.
    expect((await current.inject({ method: 'POST', url: '/v1/embeddings', payload: nulls })).statusCode).toBe(503);
    const similarity = { inputs: { source_sentence: 'a', sentences: ['b'] }, parameters: { prompt_name: null, truncate: null }, model: 'm1' };
    expect((await current.inject({ method: 'POST', url: '/similarity', payload: similarity })).statusCode).toBe(503);
    const rerank = { model: 'm1', query: 'q', documents: ['d'], top_n: null, return_documents: null };
    expect((await current.inject({ method: 'POST', url: '/v1/rerank', payload: rerank })).statusCode).toBe(503);
    const missing = await current.inject({ method: 'POST', url: '/v1/embeddings', payload: { model: 'm1', input: null } });
    expect(missing.statusCode).toBe(400);
    expect(missing.json().error).toMatchObject({ param: 'input', message: 'input is required' });
    // A null element is a wrong input, not an absent one.
    const element = await current.inject({ method: 'POST', url: '/v1/embeddings', payload: { model: 'm1', input: ['a', null] } });
    expect(element.statusCode).toBe(400);
  });

  it('checks the input limits before anything else', async () => {
    current = app({ MAX_BATCH_SIZE: '2', MAX_TEXT_CHARS: '3' });
    const many = await current.inject({ method: 'POST', url: '/v1/embeddings', payload: { model: 'm1', input: ['a', 'b', 'c'] } });
    expect(many.statusCode).toBe(400);
    expect(many.json().error.message).toContain('at most 2 (MAX_BATCH_SIZE)');
    const long = await current.inject({ method: 'POST', url: '/v1/embeddings', payload: { model: 'm1', input: ['abcd'] } });
    expect(long.statusCode).toBe(400);
    expect(long.json().error.message).toContain('input[0] has 4 characters; at most 3 (MAX_TEXT_CHARS)');
  });

  it('answers a body that is not an object with a 400 on every route that picks a dialect by the body', async () => {
    current = app();
    for (const url of ['/', '/rerank', '/tokenize', '/classify', '/embeddings']) {
      for (const payload of ['"AAA"', '[1]', 'null', '7']) {
        const res = await current.inject({ method: 'POST', url, payload, headers: { 'content-type': 'application/json' } });
        expect(res.statusCode, `${url} ${payload}`).toBe(400);
        expect(res.json().error.message).toBe('Request body must be a JSON object.');
      }
    }
  });

  it('answers 413 above MAX_REQUEST_BYTES and 404 on unknown routes, in the OpenAI shape', async () => {
    current = app({ MAX_REQUEST_BYTES: '2048' });
    const big = await current.inject({ method: 'POST', url: '/v1/embeddings', payload: { model: 'm1', input: 'x'.repeat(4000) } });
    expect(big.statusCode).toBe(413);
    expect(big.json().error.type).toBe('invalid_request_error');
    const nowhere = await current.inject({ method: 'GET', url: '/v2/nothing' });
    expect(nowhere.statusCode).toBe(404);
    expect(nowhere.json().error.code).toBe('route_not_found');
  });

  it('serves /metrics only when ENABLE_METRICS is on, and lists models with null dimensions until known', async () => {
    current = app({ ENABLE_METRICS: '0' });
    expect((await current.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(404);
    const models = await current.inject({ method: 'GET', url: '/v1/models' });
    expect(models.json().data.map((m: { id: string; dimensions: null; ready: boolean }) => [m.id, m.dimensions, m.ready])).toEqual([['m1', null, false], ['m2', null, false]]);
    await current.close();
    current = app();
    const metrics = await current.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.statusCode).toBe(200);
    expect(metrics.body).toContain('runner_up{model="m1",device="auto",runner="0"} 0');
  });

  it('echoes X-Request-Id', async () => {
    current = app();
    const res = await current.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'abc-1' } });
    expect(res.headers['x-request-id']).toBe('abc-1');
  });
});
