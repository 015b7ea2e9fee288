import type { FastifyRequest } from 'fastify';
import { modelFor, serve } from '../../core/request-scope.ts';
import type { Operation } from '../operation.ts';
import { parseOrThrow } from '../shared/validate.ts';
import { vllmClassifyRequestSchema, vllmClassifyResponseSchema, type VllmClassifyResponse } from './schemas.ts';

/** vLLM's POST /classify: the best label of each input and every label's score in id order. */
async function classify(request: FastifyRequest): Promise<VllmClassifyResponse> {
  const body = parseOrThrow(vllmClassifyRequestSchema, request.body);
  const inputs = typeof body.input === 'string' ? [body.input] : body.input;
  const model = modelFor(request, body.model, 'classify');
  const out = await serve(request, model, 'classify_request', { inputs: inputs.length }, (ctx) => model.classify(inputs, {
    raw: !(body.use_activation ?? body.softmax ?? body.activation ?? true),
    truncate: body.truncate, truncateLeft: body.truncation_direction?.toLowerCase() === 'left',
  }, ctx));
  return {
    id: request.id, object: 'list', created: Math.floor(Date.now() / 1000), model: out.model,
    data: out.items.map(({ labels, scores }, index) => ({ index, label: labels[argmax(scores)]!, probs: scores, num_classes: labels.length })),
    usage: { prompt_tokens: out.tokens, total_tokens: out.tokens, completion_tokens: 0, prompt_tokens_details: null },
  };
}

/** The first index of the highest score: the label vLLM names. */
function argmax(scores: number[]): number {
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i]! > scores[best]!) best = i;
  return best;
}

/** vLLM serves /classify under both paths; Infinity shares them (see shared-paths.ts). */
export const vllmOperations: Operation[] = ['/classify', '/v1/classify'].map((path) => ({
  method: 'post', path, tag: 'vLLM', summary: 'Sequence classification (vLLM): the best label and every label\'s score',
  request: vllmClassifyRequestSchema, response: vllmClassifyResponseSchema, handle: classify,
}));
