import { runnerLimits } from '../../runners/device-policy.ts';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../../errors.ts';
import { asInputs, choicesFrom } from '../inputs.ts';
import { callContext, modelFor } from '../route-helpers.ts';
import {
  decodeRequestSchema, teiEmbedAllRequestSchema, teiEmbedRequestSchema, teiEmbedSparseRequestSchema,
  teiRerankRequestSchema, teiSimilarityRequestSchema, type TeiInfo,
} from '../schemas/tei.ts';
import { rankDocuments } from '../ranking.ts';
import { parseOrThrow } from '../validate.ts';
import { teiPredict } from './classify.ts';
import { float32Row, float32Rows } from '../vectors.ts';

const VERSION = '0.1.0';

/**
 * TEI's POST /embed: one vector per input; token ids are the model's own, as in TEI. `fallback`
 * is the model for a body naming none, when the caller has already chosen it (POST /).
 */
async function embed(app: FastifyInstance, request: FastifyRequest, fallback?: string): Promise<number[][]> {
  const body = parseOrThrow(teiEmbedRequestSchema, request.body);
  const model = modelFor(app, request, body.model ?? fallback, 'text-embedding');
  const out = await model.embedDense(asInputs(body.inputs), choicesFrom(body, 'model'), callContext(request));
  return out.items.map(float32Row);
}

/** TEI's POST /embed_sparse: {index, value} pairs per input. */
async function embedSparse(app: FastifyInstance, request: FastifyRequest, fallback?: string) {
  const body = parseOrThrow(teiEmbedSparseRequestSchema, request.body);
  const model = modelFor(app, request, body.model ?? fallback, 'sparse-embedding');
  const out = await model.embedSparse(asInputs(body.inputs), choicesFrom(body, 'model'), callContext(request));
  return out.items.map((s) => s.indices.map((index, i) => ({ index, value: s.values[i]! })));
}

/** TEI's POST /similarity: the cosine of each sentence with the source sentence. */
async function similarity(app: FastifyInstance, request: FastifyRequest): Promise<number[]> {
  const body = parseOrThrow(teiSimilarityRequestSchema, request.body);
  const model = modelFor(app, request, body.model, 'text-embedding');
  const { source_sentence: source, sentences } = body.inputs;
  // Errors name the field the client sent: the source is inputs.source_sentence, then sentences[i].
  const inputs = { param: 'inputs', name: (i: number) => (i === 0 ? 'inputs.source_sentence' : `inputs.sentences[${i - 1}]`) };
  const out = await model.embedDense([source, ...sentences], choicesFrom(body.parameters ?? {}), { ...callContext(request), inputs });
  const [query, ...rows] = out.items.map(float32Row);
  return rows.map((row) => cosine(query!, row));
}

/**
 * TEI's POST /rerank: best first, a sigmoid over the logit for every model unless raw_scores
 * (TEI's own rule), and top_n when given, as llama.cpp's TEI-shaped route allows.
 */
export async function teiRerank(app: FastifyInstance, request: FastifyRequest) {
  const body = parseOrThrow(teiRerankRequestSchema, request.body);
  const { ranked } = await rankDocuments(app, request, body.model, body.query, body.texts, {
    activation: body.raw_scores ? 'none' : 'sigmoid', truncate: body.truncate,
    truncateLeft: body.truncation_direction?.toLowerCase() === 'left',
  });
  return ranked
    .slice(0, body.top_n ?? body.texts.length)
    .map((r) => (body.return_text ? { ...r, text: body.texts[r.index]! } : r));
}

/** Hugging Face text-embeddings-inference's routes, for clients moving from TEI. */
export default async function teiRoutes(app: FastifyInstance): Promise<void> {
  app.post('/embed', (request) => embed(app, request));
  app.post('/embed_sparse', (request) => embedSparse(app, request));
  app.post('/similarity', (request) => similarity(app, request));

  app.post('/embed_all', async (request) => {
    const body = parseOrThrow(teiEmbedAllRequestSchema, request.body);
    const model = modelFor(app, request, body.model, 'text-embedding');
    const out = await model.embedTokens(asInputs(body.inputs), choicesFrom(body, 'model'), callContext(request));
    return out.items.map((m) => float32Rows(m.data, m.dimensions));
  });

  // TEI's /decode: one sequence or several, always answered as a list of texts.
  app.post('/decode', async (request) => {
    const body = parseOrThrow(decodeRequestSchema, request.body);
    const model = modelFor(app, request, body.model, 'text-embedding');
    const sequences = typeof body.ids[0] === 'number' ? [body.ids as number[]] : (body.ids as number[][]);
    return model.detokenize(sequences, body.skip_special_tokens, callContext(request));
  });

  // TEI serves inference at its root for its model's kind; huggingface_hub's InferenceClient
  // posts there. The body's shape picks similarity or rerank; otherwise the primary model's kind
  // picks embed, sparse embed or predict.
  app.post('/', async (request) => {
    const raw = request.body;
    // Anything but an object gets its 400 from the embed route's parser.
    const body = (raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? raw : {}) as Record<string, unknown>;
    if (typeof body.inputs === 'object' && !Array.isArray(body.inputs)) return similarity(app, request);
    if ('texts' in body) return teiRerank(app, request);
    const model = app.registry.primary(typeof body.model === 'string' ? body.model : undefined);
    const capabilities = model.info?.capabilities;
    // Before its runner has described it, the primary model answers as an embedder (503 until ready).
    if (!capabilities || capabilities.includes('text-embedding')) return embed(app, request, model.name);
    if (capabilities.includes('classify')) return teiPredict(app, request, model.name);
    if (capabilities.includes('sparse-embedding')) return embedSparse(app, request, model.name);
    // A reranker cannot take `inputs`; the one served embedding model, if there is one, can.
    return embed(app, request);
  });

  // TEI describes its one model; with several served, this describes the primary one.
  app.get('/info', async (): Promise<TeiInfo> => {
    const model = app.registry.primary();
    const info = model.info;
    if (!info) throw new ApiError('unavailable', `Model '${model.name}' is not ready; retry shortly.`, { retryAfterS: 2, code: 'model_unavailable' });
    // A reranker scores with its one label; a classifier lists its own.
    const names = info.labels.length ? info.labels : ['LABEL_0'];
    const labels = { id2label: Object.fromEntries(names.map((l, i) => [String(i), l])), label2id: Object.fromEntries(names.map((l, i) => [l, i])) };
    const kind = info.capabilities.includes('classify') ? { classifier: labels }
      : info.capabilities.includes('rerank') ? { reranker: labels } : { embedding: { pooling: teiPooling(info.pooling) } };
    return {
      model_id: model.name,
      model_sha: null,
      model_dtype: info.dtype,
      model_type: kind,
      max_concurrent_requests: app.settings.MAX_QUEUE_SIZE,
      max_input_length: info.max_tokens,
      max_batch_tokens: app.settings.MAX_BATCH_TOKENS,
      max_batch_requests: null,
      max_client_batch_size: app.settings.MAX_BATCH_SIZE,
      auto_truncate: app.settings.AUTO_TRUNCATE,
      tokenization_workers: runnerLimits(info, { maxConcurrent: app.settings.MAX_CONCURRENT, maxBatchTokens: app.settings.BATCH_WINDOW_MAX_TOKENS }).concurrency,
      version: VERSION,
      sha: null,
      docker_label: null,
      served_model_name: model.name,
      models: app.registry.models.map((m) => m.name),
    };
  });
}

/** The runner's pooling name (sentence-transformers') in TEI's spelling. */
const teiPooling = (pooling: string) => (pooling === 'lasttoken' ? 'last_token' : pooling || 'cls');

function cosine(a: number[], b: number[]): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
}
