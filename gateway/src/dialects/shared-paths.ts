import type { Tag } from './operation.ts';

/** How a path that several dialects serve tells them apart, from the request's body. */
export interface SharedPath {
  /** The rule, in words, for the OpenAPI document. */
  rule: string;
  /** The dialect that answers a body (null fields already dropped; a body that is not an object arrives as {}). */
  pick: (body: Record<string, unknown>) => Tag;
}

/**
 * The OpenAI SDKs, pointed at a base URL without /v1 (as Infinity's users do), always send
 * `model` and `encoding_format`; llama.cpp's clients send `content`, or `input` alone.
 */
export function isOpenAiShaped(body: Record<string, unknown>): boolean {
  const has = (key: string) => body[key] !== undefined;
  return !has('content') && has('input') && (has('model') || has('encoding_format'));
}

/** Infinity's classify request has `raw_scores` (and its clients always send it); vLLM's has no such field. */
const classify: SharedPath = {
  rule: 'Infinity\'s shape when the body has `raw_scores`, else vLLM\'s',
  pick: (body) => ('raw_scores' in body ? 'Infinity' : 'vLLM'),
};

/** Every path more than one dialect serves, and the one rule that tells them apart; http/route-table.ts refuses a path shared without a rule. */
export const SHARED_PATHS: Record<string, SharedPath> = {
  '/embeddings': {
    rule: 'OpenAI\'s shape for a body with `input` and `model` or `encoding_format` (and no `content`), else llama.cpp\'s',
    pick: (body) => (isOpenAiShaped(body) ? 'OpenAI' : 'llama.cpp'),
  },
  '/tokenize': { rule: 'TEI\'s shape when the body has `inputs`, else llama.cpp\'s', pick: (body) => ('inputs' in body ? 'TEI' : 'llama.cpp') },
  '/rerank': { rule: 'TEI\'s shape when the body has `texts`, else Cohere\'s (also llama.cpp\'s)', pick: (body) => ('texts' in body ? 'TEI' : 'Cohere') },
  '/classify': classify,
  '/v1/classify': classify,
};
