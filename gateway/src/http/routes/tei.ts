import type { FastifyInstance } from 'fastify';
import { choicesFrom } from '../inputs.ts';
import { callContext, modelFor } from '../route-helpers.ts';
import { teiEmbedRequestSchema, teiEmbedSparseRequestSchema } from '../schemas/tei.ts';
import { parseOrThrow } from '../validate.ts';
import { float32Row } from '../vectors.ts';

const VERSION = '0.1.0';

/** Hugging Face text-embeddings-inference's routes, for clients moving from TEI. */
export default async function teiRoutes(app: FastifyInstance): Promise<void> {
  app.post('/embed', async (request) => {
    const body = parseOrThrow(teiEmbedRequestSchema, request.body);
    const model = modelFor(app, request, body.model, 'text-embedding');
    const texts = typeof body.inputs === 'string' ? [body.inputs] : body.inputs;
    const out = await model.embedDense(texts, choicesFrom(body), callContext(request));
    return out.items.map(float32Row);
  });

  app.post('/embed_sparse', async (request) => {
    const body = parseOrThrow(teiEmbedSparseRequestSchema, request.body);
    const model = modelFor(app, request, body.model, 'sparse-embedding');
    const texts = typeof body.inputs === 'string' ? [body.inputs] : body.inputs;
    const out = await model.embedSparse(texts, choicesFrom(body), callContext(request));
    return out.items.map((s) => s.indices.map((index, i) => ({ index, value: s.values[i]! })));
  });

  // TEI describes its one model; with several served, this describes the first.
  app.get('/info', async () => {
    const model = app.registry.models[0]!;
    const info = model.info;
    const rerank = info?.capabilities.includes('rerank') ?? false;
    return {
      model_id: model.name,
      model_sha: null,
      model_dtype: info?.dtype ?? null,
      model_type: rerank ? { reranker: { id2label: { 0: 'LABEL_0' }, label2id: { LABEL_0: 0 } } } : { embedding: { pooling: 'unknown' } },
      max_concurrent_requests: app.settings.MAX_QUEUE_SIZE,
      max_input_length: info?.max_tokens ?? null,
      max_batch_tokens: app.settings.MAX_BATCH_TOKENS,
      max_client_batch_size: app.settings.MAX_BATCH_SIZE,
      tokenization_workers: app.settings.MAX_CONCURRENT,
      version: VERSION,
      models: app.registry.models.map((m) => m.name),
    };
  });
}
