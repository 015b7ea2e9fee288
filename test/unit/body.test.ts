import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { testApp } from './test-app.ts';

let current: ReturnType<typeof testApp> | undefined;
afterEach(async () => current?.close());

/** POSTs raw bytes to /v1/embeddings; model 'zz' is not served, so a parsed body answers 404. */
async function post(payload: Buffer | string, headers: Record<string, string> = {}, env: Record<string, string> = {}) {
  current = testApp(env);
  const res = await current.inject({ method: 'POST', url: '/v1/embeddings', payload, headers: { 'content-type': 'application/json', ...headers } });
  return { status: res.statusCode, error: res.json().error as { message: string; code: string; param: string | null } };
}

describe('request bodies', () => {
  it('refuses a lone surrogate with 400, naming the field and index in the request', async () => {
    const res = await post('{"model": "zz", "input": ["fine", "x\\ud800y"]}');
    expect(res.status).toBe(400);
    expect(res.error).toMatchObject({ code: 'invalid_unicode', param: 'input' });
    expect(res.error.message).toContain('input[1] is not well-formed Unicode text (a lone surrogate \\uD800 at character 1)');
  });

  it('accepts surrogate pairs written as JSON escapes', async () => {
    expect((await post('{"model": "zz", "input": "emoji \\ud83d\\ude00"}')).status).toBe(404);
  });

  it('refuses bytes that are not UTF-8 with 400 instead of replacing them', async () => {
    const body = Buffer.concat([Buffer.from('{"model": "zz", "input": "caf'), Buffer.from([0xe9]), Buffer.from('"}')]);
    const res = await post(body);
    expect(res.status).toBe(400);
    expect(res.error.code).toBe('invalid_utf8');
  });

  it('refuses a __proto__ key with a message that says so, not "invalid JSON"', async () => {
    const res = await post('{"model": "zz", "input": "x", "__proto__": {"admin": true}}');
    expect(res.status).toBe(400);
    expect(res.error).toMatchObject({ code: 'forbidden_json_key', param: '__proto__' });
  });

  it('says where malformed JSON breaks', async () => {
    const res = await post('{"model": "zz", "input": }');
    expect(res.status).toBe(400);
    expect(res.error.code).toBe('invalid_json');
    expect(res.error.message).toContain('not valid JSON: Unexpected token');
  });

  it('walks a deeply nested body without overflowing the stack', async () => {
    const depth = 200_000;
    const res = await post(`{"model": "zz", "input": ${'['.repeat(depth)}${']'.repeat(depth)}}`);
    expect(res.status).toBeLessThan(500);
  });

  it('decompresses gzip and deflate bodies', async () => {
    const json = JSON.stringify({ model: 'zz', input: 'compressed' });
    expect((await post(gzipSync(json), { 'content-encoding': 'gzip' })).status).toBe(404);
    const { deflateSync } = await import('node:zlib');
    expect((await post(deflateSync(json), { 'content-encoding': 'deflate' })).status).toBe(404);
  });

  it('answers 400 for a body that is not what its Content-Encoding says', async () => {
    const res = await post('not gzip at all', { 'content-encoding': 'gzip' });
    expect(res.status).toBe(400);
    expect(res.error.code).toBe('invalid_content_encoding');
  });

  it.each(['text/plain', 'text/plain; charset=utf-8', 'application/x-www-form-urlencoded'])('answers 415 for a JSON body sent as %s', async (type) => {
    const res = await post('{"model": "zz", "input": "x"}', { 'content-type': type });
    expect(res.status).toBe(415);
    expect(res.error.code).toBe('unsupported_media_type');
    expect(res.error.message).toContain('Content-Type: application/json');
  });

  it('answers 415 naming the encodings it takes for any other Content-Encoding', async () => {
    const res = await post('{}', { 'content-encoding': 'compress' });
    expect(res.status).toBe(415);
    expect(res.error).toMatchObject({ code: 'unsupported_content_encoding' });
    expect(res.error.message).toContain('gzip');
  });

  it('applies MAX_REQUEST_BYTES to the decompressed size, so a zip bomb gets 413', async () => {
    const bomb = gzipSync(JSON.stringify({ model: 'zz', input: 'a'.repeat(1_000_000) }));
    expect(bomb.length).toBeLessThan(4096);
    const res = await post(bomb, { 'content-encoding': 'gzip' }, { MAX_REQUEST_BYTES: '65536' });
    expect(res.status).toBe(413);
  });
});
