import type { FastifyInstance, FastifyRequest } from 'fastify';
import { totalTokens, type RerankChoices } from '../services/model-service.ts';
import { callContext, modelFor } from './route-helpers.ts';

/** What every rerank dialect starts from: the model's scores, best first, and the tokens used. */
interface Ranking {
  model: string;
  ranked: { index: number; score: number }[];
  tokens: number;
}

/** Scores documents against the query with the addressed reranker and logs one rerank_request line. */
export async function rankDocuments(app: FastifyInstance, request: FastifyRequest, modelName: string | undefined, query: string,
  documents: string[], opts: RerankChoices): Promise<Ranking> {
  const model = modelFor(app, request, modelName, 'rerank');
  // A failure is logged once, rate-limited, by the error handler.
  const out = await model.rerank(query, documents, opts, callContext(request));
  const ranked = out.items.map((score, index) => ({ index, score })).sort((a, b) => b.score - a.score);
  const tokens = totalTokens(out);
  request.log.info({ model: model.name, documents: documents.length, tokens, queue_ms: out.queueMs, inference_ms: out.inferenceMs, status: 200 }, 'rerank_request');
  return { model: model.name, ranked, tokens };
}
