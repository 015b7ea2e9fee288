import { getEncoding } from 'js-tiktoken';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../../gateway/src/errors.ts';
import { decodeOpenAiTokens } from '../../gateway/src/core/tiktoken.ts';

function refusal(run: () => unknown): ApiError {
  try {
    run();
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error('no refusal');
}

describe('OpenAI token ids', () => {
  it('decode to the text they were encoded from, special tokens included', () => {
    const enc = getEncoding('cl100k_base');
    expect(decodeOpenAiTokens([enc.encode('hello world'), [100_257]], 'cl100k_base')).toEqual(['hello world', '<|endoftext|>']);
    expect(decodeOpenAiTokens([[200_018]], 'o200k_base')).toEqual(['<|endofprompt|>']);
  });

  it.each([
    ['cl100k_base', 100_256], ['cl100k_base', 100_261], ['cl100k_base', 100_275], ['cl100k_base', 100_277],
    ['o200k_base', 199_998], ['o200k_base', 200_017], ['o200k_base', 200_019],
  ] as const)('refuse %s id %i, unassigned, even next to real ids', (encoding, id) => {
    const err = refusal(() => decodeOpenAiTokens([[15_339], [15_339, id]], encoding));
    expect(err.message).toBe(`input[1] holds token id ${id}, which is not in ${encoding}.`);
    expect(err.code).toBe('invalid_token_ids');
  });

  it('keep an assigned id whose bytes are a byte-order mark, which decodes to nothing on its own', () => {
    const bom = getEncoding('cl100k_base').encode('x\uFEFF').slice(1);
    expect(decodeOpenAiTokens([[15_339, ...bom]], 'cl100k_base')).toEqual(['hello\uFEFF']);
    expect(refusal(() => decodeOpenAiTokens([bom], 'cl100k_base')).code).toBe('empty_input');
  });
});
