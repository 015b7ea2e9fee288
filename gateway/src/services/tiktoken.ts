import { getEncoding, type Tiktoken, type TiktokenEncoding } from 'js-tiktoken';
import { ApiError } from '../errors.ts';

/** The OpenAI encodings token-id inputs may be written in; `model` means the model's own vocabulary. */
export const TOKEN_ID_VOCABULARIES = ['cl100k_base', 'o200k_base', 'model'] as const;

/** How to read token-id inputs. */
export type TokenIdVocabulary = (typeof TOKEN_ID_VOCABULARIES)[number];

const encodings = new Map<TiktokenEncoding, Tiktoken>();
// Largest id of each encoding, special tokens included; js-tiktoken decodes unknown ids to nothing.
const MAX_ID: Record<Exclude<TokenIdVocabulary, 'model'>, number> = { cl100k_base: 100_276, o200k_base: 200_018 };

/**
 * Turns OpenAI token ids back into text. LangChain's OpenAIEmbeddings (and other clients built for
 * OpenAI's API) send tiktoken ids rather than text; they mean nothing to another model's
 * vocabulary, but decode exactly to the text the client started from, which is then embedded
 * like any other. The ranks ship inside js-tiktoken, so this needs no download.
 */
export function decodeOpenAiTokens(sequences: number[][], encoding: Exclude<TokenIdVocabulary, 'model'>): string[] {
  let enc = encodings.get(encoding);
  if (!enc) {
    enc = getEncoding(encoding);
    encodings.set(encoding, enc);
  }
  return sequences.map((ids, i) => {
    const bad = ids.find((id) => id > MAX_ID[encoding]);
    if (bad !== undefined) {
      throw new ApiError('validation', `input[${i}] holds token id ${bad}, which is not in ${encoding}.`, { param: 'input', code: 'invalid_token_ids' });
    }
    const text = enc!.decode(ids);
    if (text.length === 0) throw new ApiError('validation', `input[${i}] decodes to an empty text.`, { param: 'input' });
    return text;
  });
}
