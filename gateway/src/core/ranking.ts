import type { FastifyRequest } from 'fastify';
import type { RerankChoices } from './model-service.ts';
import { modelFor, serve } from './request-scope.ts';

/** What every rerank dialect starts from: the model's scores, best first, and the tokens used. */
export interface Ranking {
  model: string;
  ranked: { index: number; score: number }[];
  tokens: number;
}

/** Scores documents against the query with the addressed reranker, best first. */
export async function rankDocuments(request: FastifyRequest, modelName: string | undefined, query: string,
  documents: string[], choices: RerankChoices): Promise<Ranking> {
  const model = modelFor(request, modelName, 'rerank');
  const out = await serve(request, model, 'rerank_request', { documents: documents.length },
    (ctx) => model.rerank(query, documents, choices, ctx));
  const ranked = out.items.map((score, index) => ({ index, score })).sort((a, b) => b.score - a.score);
  return { model: out.model, ranked, tokens: out.tokens };
}
