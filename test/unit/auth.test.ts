import { afterEach, describe, expect, it } from 'vitest';
import { OPERATIONS } from '../../gateway/src/http/route-table.ts';
import { testApp } from './test-app.ts';

const app = (env: Record<string, string>) => testApp({ MODELS: 'm', ...env });

const OPS = new Set(['/health', '/health/ready', '/health/live', '/metrics']);
let current: ReturnType<typeof app> | undefined;
afterEach(async () => current?.close());

describe('API keys', () => {
  // Every documented route, so a route added later without auth fails here.
  it.each(OPERATIONS.filter((op) => !OPS.has(op.path)).map((op) => [op.method.toUpperCase(), op.path] as const))(
    '%s %s answers 401 in the OpenAI shape without a valid key, and passes auth with one', async (method, url) => {
      current = app({ API_KEY: 'key-one,key-two' });
      for (const authorization of [undefined, 'Bearer wrong', 'key-one', 'Bearer key-one-and-more']) {
        const res = await current.inject({ method, url, payload: method === 'POST' ? {} : undefined, headers: authorization ? { authorization } : {} });
        expect(res.statusCode, String(authorization)).toBe(401);
        expect(res.json().error).toMatchObject({ type: 'authentication_error', code: 'invalid_api_key' });
      }
      for (const key of ['key-one', 'key-two']) {
        // As a stream, so that /stats/stream answers once its headers are out.
        const res = await current.inject({ method, url, payload: method === 'POST' ? {} : undefined, headers: { authorization: `Bearer ${key}` }, payloadAsStream: true });
        expect(res.statusCode).not.toBe(401);
        res.stream().destroy();
      }
    });

  it('keeps /health, /metrics, /docs and /openapi.json open by default, and closes them on request', async () => {
    current = app({ API_KEY: 'k' });
    for (const url of ['/health', '/health/ready', '/health/live', '/metrics', '/docs', '/openapi.json']) {
      expect((await current.inject({ method: 'GET', url })).statusCode, url).not.toBe(401);
    }
    await current.close();
    current = app({ API_KEY: 'k', PUBLIC_OPS_ROUTES: 'false' });
    for (const url of ['/health', '/health/ready', '/health/live', '/metrics', '/docs', '/openapi.json']) {
      expect((await current.inject({ method: 'GET', url })).statusCode, url).toBe(401);
    }
  });

  it('guards the admin routes with ADMIN_API_KEY when set, and only them', async () => {
    current = app({ API_KEY: 'user', ADMIN_API_KEY: 'boss' });
    const pin = (key: string) => current!.inject({ method: 'POST', url: '/admin/models/m/pin', payload: {}, headers: { authorization: `Bearer ${key}` } });
    expect((await pin('user')).statusCode).toBe(401);
    const pinned = await pin('boss');
    expect(pinned.statusCode).toBe(200);
    expect(pinned.json()).toMatchObject({ id: 'm', pinned: true, state: 'loading' });
    const models = (key: string) => current!.inject({ method: 'GET', url: '/v1/models', headers: { authorization: `Bearer ${key}` } });
    expect((await models('boss')).statusCode).toBe(401);
    expect((await models('user')).statusCode).toBe(200);
    await current.close();
    // With only an admin key, the other routes stay open.
    current = app({ ADMIN_API_KEY: 'boss' });
    expect((await current.inject({ method: 'GET', url: '/v1/models' })).statusCode).toBe(200);
    expect((await current.inject({ method: 'POST', url: '/admin/models/m/pin', payload: {} })).statusCode).toBe(401);
  });

  it('is off without API_KEY', async () => {
    current = app({});
    expect((await current.inject({ method: 'GET', url: '/v1/models' })).statusCode).toBe(200);
  });
});

describe('CORS and the OpenAPI document', () => {
  it('answers preflights only when CORS_ORIGINS allows the origin', async () => {
    const preflight = { method: 'OPTIONS' as const, url: '/v1/embeddings', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } };
    current = app({});
    expect((await current.inject(preflight)).headers['access-control-allow-origin']).toBeUndefined();
    await current.close();
    current = app({ CORS_ORIGINS: 'https://app.example' });
    expect((await current.inject(preflight)).headers['access-control-allow-origin']).toBe('https://app.example');
  });

  it('documents every route with its request schema', async () => {
    current = app({});
    const doc = (await current.inject({ method: 'GET', url: '/openapi.json' })).json();
    expect(doc.openapi).toBe('3.1.0');
    for (const op of OPERATIONS) expect(doc.paths[op.path][op.method], op.path).toBeDefined();
    const body = doc.paths['/v1/embeddings'].post.requestBody.content['application/json'].schema;
    expect(body.required).toEqual(['input']);
    expect(Object.keys(body.properties)).toEqual(expect.arrayContaining(['encoding_format', 'dimensions', 'embedding_type', 'tokenizer']));
    // null is read as absent, so every optional field says it may be null.
    expect(body.properties.dimensions.anyOf).toContainEqual({ type: 'null' });
    expect(body.properties.input.anyOf).not.toContainEqual({ type: 'null' });
    expect((await current.inject({ method: 'GET', url: '/docs' })).statusCode).toBeLessThan(400);
  });
});
