import { describe, expect, it } from 'vitest';
import { embeddingsRequestSchema } from '../../gateway/src/dialects/openai/schemas.ts';
import { parseOrThrow } from '../../gateway/src/dialects/shared/validate.ts';
import { ApiError } from '../../gateway/src/errors.ts';

describe('embeddings request schema', () => {
  it('accepts token-id inputs, one sequence or many', () => {
    expect(parseOrThrow(embeddingsRequestSchema, { model: 'm', input: [1, 2] }).input).toEqual([1, 2]);
    expect(parseOrThrow(embeddingsRequestSchema, { model: 'm', input: [[1], [2, 3]] }).input).toEqual([[1], [2, 3]]);
  });

  it('accepts the OpenAI shapes and defaults to float', () => {
    expect(parseOrThrow(embeddingsRequestSchema, { model: 'm', input: 'x' })).toEqual({ model: 'm', input: 'x', encoding_format: 'float', embedding_type: 'dense' });
    expect(parseOrThrow(embeddingsRequestSchema, { model: 'm', input: ['a', 'b'], encoding_format: 'base64', user: 'u', dimensions: 8 }))
      .toMatchObject({ input: ['a', 'b'], encoding_format: 'base64', dimensions: 8 });
  });

  it.each([
    [{ model: 'm' }, 'input', 'input is required'],
    [{ model: 'm', input: '' }, 'input', 'inputs must not be empty strings'],
    [{ model: 'm', input: ['a', ''] }, 'input', 'inputs must not be empty strings'],
    [{ model: 'm', input: [] }, 'input', 'at least one text'],
    [{ model: 'm', input: 7 }, 'input', 'a string, an array of strings, an array of token ids'],
    [{ model: 'm', input: [1, 'a'] }, 'input', 'a string, an array of strings'],
    [{ model: 'm', input: [[]] }, 'input', 'input[0]: token-id inputs must not be empty'],
    [{ model: 'm', input: [-1] }, 'input', 'input'],
    [{ input: 'x', model: '' }, 'model', 'model must not be empty'],
    [{ model: 'm', input: 'x', encoding_format: 'int16' }, 'encoding_format', 'encoding_format'],
    [{ model: 'm', input: 'x', dimensions: 0 }, 'dimensions', 'dimensions'],
  ])('rejects %o as a 400 on %s', (body, param, message) => {
    try {
      parseOrThrow(embeddingsRequestSchema, body);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ApiError);
      expect((err as ApiError).kind).toBe('validation');
      expect((err as ApiError).param).toBe(param);
      expect((err as ApiError).message).toContain(message);
    }
  });

  it('rejects a body that is not an object', () => {
    expect(() => parseOrThrow(embeddingsRequestSchema, 'text')).toThrow('Request body must be a JSON object.');
  });
});
