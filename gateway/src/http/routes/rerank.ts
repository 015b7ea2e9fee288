import type { FastifyInstance, FastifyRequest } from 'fastify';
import { rerankRequestSchema, type RerankResponse } from '../schemas/rerank.ts';
import { teiRerankRequestSchema } from '../schemas/tei.ts';
import { callContext, modelFor } from '../route-helpers.ts';
import { parseOrThrow } from '../validate.ts';

/** The Cohere / Jina / llama.cpp rerank shape is served on all of these paths. */
const PATHS = ['/v1/rerank', '/v2/rerank', '/rerank', '/reranking', '/v1/reranking'];

/** Reranking with a cross-encoder, in the shapes of Cohere, Jina, llama.cpp and TEI. */
export default async function rerankRoutes(app: FastifyInstance): Promise<void> {
  async function scores(request: FastifyRequest, modelName: string | undefined, query: string, documents: string[],
    opts: { raw: boolean; truncate?: boolean; maxDocTokens?: number }) {
    const model = modelFor(app, request, modelName, 'rerank');
    // A failure is logged once, rate-limited, by the error handler.
    const out = await model.rerank(query, documents, opts, callContext(request));
    const ranked = out.items.map((score, index) => ({ index, score })).sort((a, b) => b.score - a.score);
    const tokens = out.tokens.reduce((a, b) => a + b, 0);
    request.log.info({ model: model.name, documents: documents.length, tokens, queue_ms: out.queueMs, inference_ms: out.inferenceMs, status: 200 }, 'rerank_request');
    return { model: model.name, ranked, tokens };
  }

  for (const path of PATHS) {
    app.post(path, async (request): Promise<RerankResponse | { index: number; score: number; text?: string }[]> => {
      const raw = request.body as Record<string, unknown> | undefined;
      // TEI's shape shares POST /rerank; it is told apart by its `texts` field.
      if (path === '/rerank' && raw && typeof raw === 'object' && 'texts' in raw) {
        const body = parseOrThrow(teiRerankRequestSchema, raw);
        // TEI's own semantics: a sigmoid over the logit for every model unless raw_scores.
        const { ranked } = await scores(request, body.model, body.query, body.texts, { raw: true, truncate: body.truncate });
        return ranked.map(({ index, score }) => ({
          index,
          score: body.raw_scores ? score : sigmoid(score),
          ...(body.return_text ? { text: body.texts[index]! } : {}),
        }));
      }
      const body = parseOrThrow(rerankRequestSchema, raw);
      const documents = body.documents.map((d) => (typeof d === 'string' ? d : d.text));
      const activation = body.activation ?? (body.raw_scores ? 'none' : 'model');
      const { model, ranked, tokens } = await scores(request, body.model, body.query, documents,
        { raw: activation !== 'model', truncate: body.truncate, maxDocTokens: body.max_tokens_per_doc });
      if (activation === 'sigmoid') for (const r of ranked) r.score = sigmoid(r.score);
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
    });
  }
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
