import type { FastifyInstance } from 'fastify';
import { toHttpError } from '../error-envelope.ts';
import { rerankRequestSchema, type RerankResponse } from '../schemas/rerank.ts';
import { parseOrThrow } from '../validate.ts';

/** POST /v1/rerank: Cohere / Jina style reranking with a cross-encoder. */
export default async function rerankRoute(app: FastifyInstance): Promise<void> {
  app.post('/v1/rerank', async (request, reply): Promise<RerankResponse> => {
    const body = parseOrThrow(rerankRequestSchema, request.body);
    request.modelName = body.model;
    const model = app.registry.get(body.model);
    const documents = body.documents.map((d) => (typeof d === 'string' ? d : d.text));

    let out;
    try {
      out = await model.rerank(body.query, documents, { raw: body.raw_scores, truncate: body.truncate },
        { requestId: request.id, signal: request.abortSignal });
    } catch (err) {
      request.log.info({ model: body.model, documents: documents.length, status: toHttpError(err).status }, 'rerank_request');
      throw err;
    }
    const tokens = out.tokens.reduce((a, b) => a + b, 0);
    const ranked = out.items
      .map((score, index) => ({ index, relevance_score: score }))
      .sort((a, b) => b.relevance_score - a.relevance_score)
      .slice(0, body.top_n ?? documents.length);
    request.log.info({
      model: body.model, documents: documents.length, tokens, queue_ms: out.queueMs, inference_ms: out.inferenceMs,
      total_ms: reply.elapsedTime, status: 200,
    }, 'rerank_request');
    return {
      id: request.id,
      model: body.model,
      results: ranked.map((r) => (body.return_documents ? { ...r, document: { text: documents[r.index]! } } : r)),
      usage: { prompt_tokens: tokens, total_tokens: tokens },
      meta: { api_version: { version: '2' }, billed_units: { search_units: 1 } },
    };
  });
}
