import { getEncoding, type Tiktoken } from 'js-tiktoken';
import { ApiError } from '../errors.ts';

/** The OpenAI encodings token-id inputs may be written in; `model` means the model's own vocabulary. */
export const TOKEN_ID_VOCABULARIES = ['cl100k_base', 'o200k_base', 'model'] as const;

/** How to read token-id inputs. */
export type TokenIdVocabulary = (typeof TOKEN_ID_VOCABULARIES)[number];

type OpenAiEncoding = Exclude<TokenIdVocabulary, 'model'>;

// Largest id of each encoding, special tokens included.
const MAX_ID: Record<OpenAiEncoding, number> = { cl100k_base: 100_276, o200k_base: 200_018 };

/** An encoding, and which ids up to its largest it assigns: the others sit in gaps between its ranks and special tokens. */
interface Vocabulary {
  enc: Tiktoken;
  known: Uint8Array;
}

const vocabularies = new Map<OpenAiEncoding, Vocabulary>();

/**
 * js-tiktoken decodes an unassigned id to nothing, so a gap id inside a sequence would vanish
 * without a word. Each id is decoded once, after a letter: every assigned id then adds at least
 * one character (a lone byte of a longer UTF-8 character becomes U+FFFD), including the one whose
 * bytes are a byte-order mark, which the decoder would strip at the start of a text.
 */
function vocabulary(encoding: OpenAiEncoding): Vocabulary {
  let vocab = vocabularies.get(encoding);
  if (!vocab) {
    const enc = getEncoding(encoding);
    const lead = enc.encode('a');
    const base = enc.decode(lead).length;
    const known = new Uint8Array(MAX_ID[encoding] + 1);
    const probe = [...lead, 0];
    for (let id = 0; id < known.length; id++) {
      probe[lead.length] = id;
      known[id] = enc.decode(probe).length > base ? 1 : 0;
    }
    vocab = { enc, known };
    vocabularies.set(encoding, vocab);
  }
  return vocab;
}

/**
 * Turns OpenAI token ids back into text. LangChain's OpenAIEmbeddings (and other clients built for
 * OpenAI's API) send tiktoken ids rather than text; they mean nothing to another model's
 * vocabulary, but decode exactly to the text the client started from, which is then embedded
 * like any other. The ranks ship inside js-tiktoken, so this needs no download.
 */
export function decodeOpenAiTokens(sequences: number[][], encoding: OpenAiEncoding): string[] {
  const { enc, known } = vocabulary(encoding);
  return sequences.map((ids, i) => {
    const bad = ids.find((id) => known[id] !== 1);
    if (bad !== undefined) {
      throw new ApiError('validation', `input[${i}] holds token id ${bad}, which is not in ${encoding}.`, { param: 'input', code: 'invalid_token_ids' });
    }
    const text = enc.decode(ids);
    if (text.length === 0) throw new ApiError('validation', `input[${i}] decodes to an empty text.`, { param: 'input', code: 'empty_input' });
    return text;
  });
}
