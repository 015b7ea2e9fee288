import type { FastifyRequest } from 'fastify';
import { modelFor, serve } from '../../core/request-scope.ts';
import type { Operation } from '../operation.ts';
import { bestFirst } from '../shared/predictions.ts';
import { parseOrThrow } from '../shared/validate.ts';
import { infinityClassifyRequestSchema, infinityClassifyResponseSchema, type InfinityClassifyResponse } from './schemas.ts';

/** Infinity's POST /classify: every label of each input, best first. */
async function classify(request: FastifyRequest): Promise<InfinityClassifyResponse> {
  const body = parseOrThrow(infinityClassifyRequestSchema, request.body);
  const inputs = typeof body.input === 'string' ? [body.input] : body.input;
  const model = modelFor(request, body.model, 'classify');
  const out = await serve(request, model, 'classify_request', { inputs: inputs.length }, (ctx) => model.classify(inputs, {
    raw: body.raw_scores, truncate: body.truncate, truncateLeft: body.truncation_direction?.toLowerCase() === 'left',
  }, ctx));
  return {
    object: 'classify', data: out.items.map(bestFirst), model: out.model,
    usage: { prompt_tokens: out.tokens, total_tokens: out.tokens }, id: request.id, created: Math.floor(Date.now() / 1000),
  };
}

/** Infinity serves /classify, and /v1/classify under its /v1 prefix; vLLM shares both (see shared-paths.ts). */
export const infinityOperations: Operation[] = ['/classify', '/v1/classify'].map((path) => ({
  method: 'post', path, tag: 'Infinity', summary: 'Sequence classification (Infinity): every label best first',
  request: infinityClassifyRequestSchema, response: infinityClassifyResponseSchema, handle: classify,
}));
