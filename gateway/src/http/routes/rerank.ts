import type { FastifyInstance, FastifyRequest } from 'fastify';
import { rerankRequestSchema, type RerankResponse } from '../schemas/rerank.ts';
import { rankDocuments } from '../ranking.ts';
import { parseOrThrow } from '../validate.ts';
import { teiRerank } from './tei.ts';

/** The Cohere / Jina / llama.cpp rerank shape is served on all of these paths. */
const PATHS = ['/v1/rerank', '/v2/rerank', '/rerank', '/reranking', '/v1/reranking'];

/** Reranking with a cross-encoder, in the shapes of Cohere, Jina, llama.cpp and TEI. */
export default async function rerankRoutes(app: FastifyInstance): Promise<void> {
  for (const path of PATHS) {
    app.post(path, async (request) => {
      const raw = request.body as Record<string, unknown> | undefined;
      // TEI's shape shares POST /rerank; it is told apart by its `texts` field.
      if (path === '/rerank' && raw && typeof raw === 'object' && 'texts' in raw) return teiRerank(app, request);
      return cohereRerank(request);
    });
  }

  async function cohereRerank(request: FastifyRequest): Promise<RerankResponse> {
    const body = parseOrThrow(rerankRequestSchema, request.body);
    const documents = body.documents.map((d) => (typeof d === 'string' ? d : d.text));
    const activation = body.activation ?? (body.raw_scores ? 'none' : 'model');
    const { model, ranked, tokens } = await rankDocuments(app, request, body.model, body.query, documents,
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
}
