import { afterEach, describe, expect, it } from 'vitest';
import { infinityClassifyRequestSchema } from '../../gateway/src/dialects/infinity/schemas.ts';
import { teiPredictRequestSchema } from '../../gateway/src/dialects/tei/schemas.ts';
import { vllmClassifyRequestSchema } from '../../gateway/src/dialects/vllm/schemas.ts';
import { testApp } from './test-app.ts';

let current: ReturnType<typeof testApp> | undefined;
afterEach(async () => current?.close());

describe('classify request bodies', () => {
  it('reads TEI inputs as TEI does: a text, a flat [text] or [text, text_pair], or a batch of those', () => {
    for (const inputs of ['a text', ['a text'], ['premise', 'hypothesis'], [['a'], ['premise', 'hypothesis']]]) {
      expect(teiPredictRequestSchema.safeParse({ inputs }).success, JSON.stringify(inputs)).toBe(true);
    }
    for (const inputs of [['a', 'b', 'c'], [], [['a', 'b', 'c']], [[]], [['a'], ['']], '', [1]]) {
      expect(teiPredictRequestSchema.safeParse({ inputs }).success, JSON.stringify(inputs)).toBe(false);
    }
    expect(teiPredictRequestSchema.parse({ inputs: 'x' }).raw_scores).toBe(false);
  });

  it("reads Infinity's placeholder model name as no model, and leaves real names alone", () => {
    expect(infinityClassifyRequestSchema.parse({ input: ['x'], model: 'default/not-specified', raw_scores: false }).model).toBeUndefined();
    expect(infinityClassifyRequestSchema.parse({ input: ['x'], model: 'distilbert-sst-2', raw_scores: true }).model).toBe('distilbert-sst-2');
  });

  it("takes vLLM's input as a text or a list of texts, never empty", () => {
    expect(vllmClassifyRequestSchema.safeParse({ input: 'x' }).success).toBe(true);
    expect(vllmClassifyRequestSchema.safeParse({ input: ['x', 'y'], use_activation: false }).success).toBe(true);
    for (const input of [[], '', [''], [1, 2]]) expect(vllmClassifyRequestSchema.safeParse({ input }).success, JSON.stringify(input)).toBe(false);
  });
});

describe('classify routes before any runner is up', () => {
  it('refuses a flat list of three texts on /predict with a 400 that shows the batch shape', async () => {
    current = testApp();
    const res = await current.inject({ method: 'POST', url: '/predict', payload: { inputs: ['a', 'b', 'c'] } });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatchObject({ param: 'inputs', message: expect.stringContaining('[["text"], ["text", "text_pair"], ...]') });
  });

  it('validates each /classify dialect with its own schema', async () => {
    current = testApp();
    // Infinity's shape, picked by raw_scores: a wrong-typed raw_scores is its error.
    const infinity = await current.inject({ method: 'POST', url: '/classify', payload: { input: ['x'], raw_scores: 'yes' } });
    expect(infinity.statusCode).toBe(400);
    expect(infinity.json().error.param).toBe('raw_scores');
    // vLLM's shape: use_activation is checked, raw_scores never mentioned.
    const vllm = await current.inject({ method: 'POST', url: '/v1/classify', payload: { input: ['x'], use_activation: 'no' } });
    expect(vllm.statusCode).toBe(400);
    expect(vllm.json().error.param).toBe('use_activation');
  });

  it('documents /predict and both /classify paths in the OpenAPI document', async () => {
    current = testApp();
    const doc = (await current.inject({ method: 'GET', url: '/openapi.json' })).json();
    for (const path of ['/predict', '/classify', '/v1/classify']) expect(doc.paths[path].post, path).toBeDefined();
  });
});
