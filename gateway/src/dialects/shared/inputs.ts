import type { z } from 'zod';
import type { EmbedChoices, Inputs } from '../../core/model-service.ts';
import type { TokenIdVocabulary } from '../../core/tiktoken.ts';
import type { embeddingExtensions } from './fields.ts';

/** The extension fields a request may carry (fields.ts), and a Matryoshka size. */
type ExtensionFields = Partial<z.output<z.ZodObject<typeof embeddingExtensions>>> & { dimensions?: number };

/**
 * Wire extension fields → the service's choices. `tokenIds` is how the route's own dialect reads
 * token ids when the request does not say: llama.cpp and TEI take the model's own ids, while
 * OpenAI's route keeps TOKEN_ID_INPUTS (undefined here).
 */
export function choicesFrom(body: ExtensionFields, tokenIds?: TokenIdVocabulary): EmbedChoices {
  return {
    kind: body.input_type,
    promptName: body.prompt_name,
    dimensions: body.dimensions,
    truncate: body.truncate,
    truncateLeft: body.truncation_direction?.toLowerCase() === 'left',
    normalize: body.normalize,
    tokenIds: body.tokenizer ?? tokenIds,
  };
}

/** One input or many, as texts or token ids → always a list. */
export function asInputs(input: string | string[] | number[] | number[][]): Inputs {
  if (typeof input === 'string') return [input];
  if (input.length > 0 && typeof input[0] === 'number') return [input as number[]];
  return input as Inputs;
}
