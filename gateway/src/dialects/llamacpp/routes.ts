import type { FastifyRequest } from 'fastify';
import { modelFor, serve } from '../../core/request-scope.ts';
import type { Operation } from '../operation.ts';
import { asInputs, choicesFrom } from '../shared/inputs.ts';
import { parseOrThrow } from '../shared/validate.ts';
import { float32Row } from '../shared/vectors.ts';
import {
  llamaDetokenizeRequestSchema, llamaEmbeddingRequestSchema, llamaEmbeddingResponseSchema, llamaTokenizeRequestSchema, llamaTokenizeResponseSchema,
} from './schemas.ts';

/**
 * llama.cpp's non-OpenAI embeddings: one nested vector per input, normalised as embd_normalize
 * says. Token ids are the model's own, as in llama.cpp.
 */
async function embedding(request: FastifyRequest) {
  const body = parseOrThrow(llamaEmbeddingRequestSchema, request.body);
  const model = modelFor(request, body.model, 'text-embedding');
  const inputs = asInputs((body.content ?? body.input)!);
  const choices = { ...choicesFrom(body, 'model'), norm: body.embd_normalize };
  const out = await serve(request, model, 'embedding_request', { inputs: inputs.length, embd_normalize: body.embd_normalize },
    (ctx) => model.embedDense(inputs, choices, ctx));
  return out.items.map((row, index) => ({ index, embedding: [float32Row(row)] }));
}

/** llama.cpp's POST /tokenize: ids, or each id with its piece. */
async function tokenize(request: FastifyRequest) {
  const body = parseOrThrow(llamaTokenizeRequestSchema, request.body);
  const model = modelFor(request, body.model, 'text-embedding');
  const out = await serve(request, model, 'tokenize_request', { inputs: 1 }, (ctx) => model.tokenize([body.content], body.add_special, ctx));
  return { tokens: out.items[0]!.map((t) => (body.with_pieces ? { id: t.id, piece: t.text } : t.id)) };
}

/** llama.cpp's POST /detokenize: one sequence of the model's ids to its text. */
async function detokenize(request: FastifyRequest) {
  const body = parseOrThrow(llamaDetokenizeRequestSchema, request.body);
  const model = modelFor(request, body.model, 'text-embedding');
  if (body.tokens.length === 0) return { content: '' };
  const out = await serve(request, model, 'tokenize_request', { inputs: 1 }, (ctx) => model.detokenize([body.tokens], false, ctx));
  return { content: out.items[0] };
}

/** llama.cpp server's own routes; POST /embeddings and /tokenize are shared with other dialects (see shared-paths.ts). */
export const llamaOperations: Operation[] = [
  ...['/embedding', '/embeddings'].map((path): Operation => ({
    method: 'post', path, tag: 'llama.cpp', summary: 'Embeddings (llama.cpp)',
    request: llamaEmbeddingRequestSchema, response: llamaEmbeddingResponseSchema, handle: embedding,
  })),
  { method: 'post', path: '/tokenize', tag: 'llama.cpp', summary: 'Tokenize (llama.cpp)', request: llamaTokenizeRequestSchema, response: llamaTokenizeResponseSchema, handle: tokenize },
  { method: 'post', path: '/detokenize', tag: 'llama.cpp', summary: 'Token ids to text', request: llamaDetokenizeRequestSchema, handle: detokenize },
];
