import { afterAll, describe, expect, it } from 'vitest';
import { cohereEmbedV1RequestSchema, cohereEmbedV2RequestSchema } from '../../gateway/src/dialects/cohere/embed-schemas.ts';
import { parseOrThrow } from '../../gateway/src/dialects/shared/validate.ts';
import { testApp } from './test-app.ts';

// The runners of testApp never start: a valid request gets as far as the model (503), an
// invalid one stops at validation (400). The end-to-end suite (test_cohere_embed.py) covers the rest.
describe('Cohere embed requests', () => {
  const app = testApp();
  afterAll(() => app.close());

  it('defaults as Cohere does: search_document, END, no types on v1 and float on v2', () => {
    expect(parseOrThrow(cohereEmbedV1RequestSchema, { texts: ['a'] }))
      .toEqual({ texts: ['a'], input_type: 'search_document', truncate: 'END' });
    expect(parseOrThrow(cohereEmbedV2RequestSchema, { texts: ['a'], model: 'm', input_type: 'search_query' }))
      .toEqual({ texts: ['a'], model: 'm', input_type: 'search_query', truncate: 'END', embedding_types: ['float'] });
  });

  it('reads v2 inputs as the text of their parts', () => {
    const body = parseOrThrow(cohereEmbedV2RequestSchema, {
      inputs: [{ content: [{ type: 'text', text: 'one' }, { type: 'text', text: 'two' }] }], input_type: 'clustering',
    });
    expect(body.inputs).toEqual([{ content: ['one', 'two'] }]);
  });

  it.each([
    ['/v1/embed', {}, 'texts'],
    ['/v1/embed', { texts: [] }, 'texts'],
    ['/v1/embed', { texts: ['a', ''] }, 'texts'],
    ['/v1/embed', { texts: ['a'], truncate: 'MIDDLE' }, 'truncate'],
    ['/v1/embed', { texts: ['a'], input_type: 'image' }, 'input_type'],
    ['/v1/embed', { texts: ['a'], embedding_types: ['int4'] }, 'embedding_types'],
    ['/v1/embed', { texts: ['a'], embedding_types: [] }, 'embedding_types'],
    ['/v1/embed', { texts: ['a'], images: ['data:image/png;base64,AA=='] }, 'images'],
    ['/v2/embed', { input_type: 'search_query' }, 'texts'],
    ['/v2/embed', { texts: ['a'], inputs: [{ content: [{ type: 'text', text: 'b' }] }] }, 'texts'],
    ['/v2/embed', { inputs: [{ content: [{ type: 'image_url', image_url: { url: 'x' } }] }] }, 'inputs'],
    ['/v2/embed', { texts: ['a'], output_dimension: 0 }, 'output_dimension'],
    ['/v2/embed', { texts: ['a'], max_tokens: -1 }, 'max_tokens'],
  ])('%s refuses %o with a 400 naming %s', async (url, payload, param) => {
    const res = await app.inject({ method: 'POST', url, payload });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.param).toBe(param);
  });

  it('explains why images are refused', async () => {
    const res = await app.inject({ method: 'POST', url: '/v1/embed', payload: { texts: ['a'], input_type: 'image' } });
    expect(res.json().error.message).toContain('text only');
  });

  it.each(['/v1/embed', '/v2/embed'])('%s gets past validation to the model, which is not ready', async (url) => {
    const res = await app.inject({ method: 'POST', url, payload: { model: 'm1', texts: ['a'], embedding_types: ['int8', 'ubinary'], truncate: 'NONE' } });
    expect(res.statusCode).toBe(503);
  });
});

describe('/v1/embeddings encoding_format extension', () => {
  const app = testApp();
  afterAll(() => app.close());

  it.each(['int8', 'uint8', 'binary', 'ubinary'])('accepts %s for dense vectors', async (encoding_format) => {
    const res = await app.inject({ method: 'POST', url: '/v1/embeddings', payload: { model: 'm1', input: 'a', encoding_format } });
    expect(res.statusCode).toBe(503);
  });

  it('refuses integer formats for sparse and colbert vectors, and int8 with normalize false', async () => {
    for (const payload of [
      { model: 'm1', input: 'a', encoding_format: 'int8', embedding_type: 'colbert' },
      { model: 'm1', input: 'a', encoding_format: 'binary', embedding_type: 'sparse' },
      { model: 'm1', input: 'a', encoding_format: 'uint8', normalize: false },
    ]) {
      const res = await app.inject({ method: 'POST', url: '/v1/embeddings', payload });
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json().error.param).toBe('encoding_format');
    }
  });
});
