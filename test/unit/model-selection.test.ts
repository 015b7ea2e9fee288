import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { catalogEntrySchema } from '../../gateway/src/config/catalog.ts';
import { loadSettings, SettingsError } from '../../gateway/src/config/settings.ts';
import { ApiError } from '../../gateway/src/errors.ts';
import { isOpenAiShaped } from '../../gateway/src/dialects/shared-paths.ts';
import { createMetrics } from '../../gateway/src/metrics/metrics.ts';
import { ModelRegistry } from '../../gateway/src/core/model-registry.ts';

const CAPABILITIES: Record<string, string[]> = { e1: ['text-embedding'], e2: ['text-embedding', 'sparse-embedding'], r: ['rerank'] };

/** A registry over models whose runners have described themselves but were never started. */
function registry(env: Record<string, string> = {}, models = 'e1,e2,r') {
  const settings = loadSettings({ argv: [], env: { MODELS: models, ...env } });
  const entries = settings.MODELS.map((name) => catalogEntrySchema.parse({ name, hf_repo_id: 'x/y', handler: 'a.B' }));
  const reg = new ModelRegistry(entries, settings, { socket: (i) => `/nonexistent/${i}` }, createMetrics(), pino({ level: 'silent' }));
  for (const m of reg.models) {
    for (const r of m.runners) Object.defineProperty(r, 'info', { value: { capabilities: CAPABILITIES[m.name] } });
  }
  return reg;
}

const failure = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return err as ApiError;
  }
  throw new Error('expected an error');
};

describe('model selection', () => {
  it('picks the one model that can do what a request without `model` needs', () => {
    const reg = registry();
    expect(reg.resolve(undefined, 'rerank').name).toBe('r');
    expect(reg.resolve(undefined, 'sparse-embedding').name).toBe('e2');
  });

  it('refuses to guess between several candidates, naming them', () => {
    const err = failure(() => registry().resolve(undefined, 'text-embedding'));
    expect(err).toMatchObject({ kind: 'validation', param: 'model', code: 'model_required' });
    expect(err.message).toContain('e1, e2');
  });

  it('uses DEFAULT_MODEL for what it can do, and the only candidate for the rest', () => {
    const reg = registry({ DEFAULT_MODEL: 'e2' });
    expect(reg.resolve(undefined, 'text-embedding').name).toBe('e2');
    expect(reg.resolve(undefined, 'rerank').name).toBe('r');
    expect(reg.primary().name).toBe('e2');
    expect(registry().primary().name).toBe('e1');
  });

  it('answers aliases with their model and keeps unknown names a 404', () => {
    const reg = registry({ MODEL_ALIASES: 'text-embedding-3-small=e1, rerank-english-v3.0 = r' });
    expect(reg.resolve('text-embedding-3-small', 'text-embedding').name).toBe('e1');
    expect(reg.get('rerank-english-v3.0').name).toBe('r');
    expect([...reg.aliases]).toEqual([['text-embedding-3-small', 'e1'], ['rerank-english-v3.0', 'r']]);
    const err = failure(() => reg.resolve('text-embedding-3-large', 'text-embedding'));
    expect(err).toMatchObject({ kind: 'not_found', code: 'model_not_found' });
    expect(err.message).toContain('Aliases: text-embedding-3-small, rerank-english-v3.0');
  });

  it.each([
    [{ DEFAULT_MODEL: 'zz' }, "DEFAULT_MODEL (--default-model): 'zz' is not one of MODELS"],
    [{ MODEL_ALIASES: 'a=zz' }, "alias 'a' points at 'zz'"],
    [{ MODEL_ALIASES: 'e1=e2' }, "alias 'e1' is itself a served model"],
    [{ MODEL_ALIASES: 'justaname' }, 'write each alias as alias=model'],
  ])('refuses settings %o at start', (env, message) => {
    expect(() => registry(env)).toThrow(SettingsError);
    expect(() => registry(env)).toThrow(message);
  });
});

describe('the POST /embeddings rule', () => {
  it.each([
    [{ content: 'x' }, false],
    [{ input: 'x' }, false],
    [{ content: 'x', model: 'm' }, false],
    [{ input: 'x', model: 'm' }, true],
    [{ input: 'x', encoding_format: 'base64' }, true],
  ])('%o is OpenAI-shaped: %s', (body, openAi) => {
    expect(isOpenAiShaped(body)).toBe(openAi);
  });
});
