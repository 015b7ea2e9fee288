import type { FastifyRequest } from 'fastify';
import { rankDocuments } from '../../core/ranking.ts';
import type { Operation } from '../operation.ts';
import { parseOrThrow } from '../shared/validate.ts';
import { rerankRequestSchema, rerankResponseSchema, type RerankResponse } from './rerank-schemas.ts';

/** Cohere's rerank, which Jina's and llama.cpp's rerank clients also send. */
async function rerank(request: FastifyRequest): Promise<RerankResponse> {
  const body = parseOrThrow(rerankRequestSchema, request.body);
  const documents = body.documents.map((d) => (typeof d === 'string' ? d : d.text));
  const activation = body.activation ?? (body.raw_scores ? 'none' : 'model');
  const { model, ranked, tokens } = await rankDocuments(request, body.model, body.query, documents,
    { activation, truncate: body.truncate, maxDocTokens: body.max_tokens_per_doc });
  return {
    id: request.id,
    object: 'list',
    model,
    results: ranked.slice(0, body.top_n ?? documents.length).map(({ index, score }) => ({
      index,
      relevance_score: score,
      ...(body.return_documents ? { document: { text: documents[index]! } } : {}),
    })),
    usage: { prompt_tokens: tokens, total_tokens: tokens },
    meta: { api_version: { version: '2' }, billed_units: { search_units: 1 } },
  };
}

/**
 * Cohere's paths, Jina's (/v1/rerank, the same shape) and llama.cpp's (/rerank, /reranking,
 * /v1/reranking). POST /rerank is shared with TEI (see shared-paths.ts).
 */
export const cohereRerankOperations: Operation[] = ['/v1/rerank', '/v2/rerank', '/rerank', '/reranking', '/v1/reranking'].map((path) => ({
  method: 'post', path, tag: 'Cohere', summary: 'Rerank (Cohere, Jina, llama.cpp)', request: rerankRequestSchema, response: rerankResponseSchema, handle: rerank,
}));
