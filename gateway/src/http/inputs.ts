import type { EmbedChoices, Inputs } from '../services/model-service.ts';

/** The extension fields a request may carry (see schemas/embeddings.ts). */
interface ExtensionFields {
  input_type?: 'query' | 'document';
  prompt_name?: string;
  truncate?: boolean;
  truncation_direction?: 'left' | 'right' | 'Left' | 'Right';
  normalize?: boolean;
  tokenizer?: 'cl100k_base' | 'o200k_base' | 'model';
  dimensions?: number;
}

/** Wire extension fields → the service's choices. */
export function choicesFrom(body: ExtensionFields): EmbedChoices {
  return {
    kind: body.input_type,
    promptName: body.prompt_name,
    dimensions: body.dimensions,
    truncate: body.truncate,
    truncateLeft: body.truncation_direction?.toLowerCase() === 'left',
    normalize: body.normalize,
    tokenIds: body.tokenizer,
  };
}

/** One input or many, as texts or token ids → always a list. */
export function asInputs(input: string | string[] | number[] | number[][]): Inputs {
  if (typeof input === 'string') return [input];
  if (input.length > 0 && typeof input[0] === 'number') return [input as number[]];
  return input as Inputs;
}
