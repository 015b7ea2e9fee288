import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { ClassifyText } from '../../core/call-specs.ts';
import { rankDocuments } from '../../core/ranking.ts';
import { modelFor, serve } from '../../core/request-scope.ts';
import type { Operation } from '../operation.ts';
import { asInputs, choicesFrom } from '../shared/inputs.ts';
import { bestFirst } from '../shared/predictions.ts';
import { parseOrThrow } from '../shared/validate.ts';
import { float32Row, float32Rows } from '../shared/vectors.ts';
import {
  teiDecodeRequestSchema, teiEmbedAllRequestSchema, teiEmbedAllResponseSchema, teiEmbedRequestSchema, teiEmbedSparseRequestSchema,
  teiPredictRequestSchema, teiPredictResponseSchema, teiRerankRequestSchema, teiRerankResponseSchema, teiSimilarityRequestSchema,
  teiSimilarityResponseSchema, teiTokenizeRequestSchema, teiTokenizeResponseSchema, type TeiPredictResponse,
} from './schemas.ts';
import { infoOperation } from './info.ts';

/** TEI names its inputs `inputs`, with `inputs[i]` for one of a list. */
const INPUTS = { param: 'inputs', name: (i: number) => `inputs[${i}]` };

/**
 * TEI's POST /embed: one vector per input; token ids are the model's own, as in TEI. `fallback`
 * is the model for a body naming none, when the caller has already chosen it (POST /).
 */
async function embed(request: FastifyRequest, fallback?: string): Promise<number[][]> {
  const body = parseOrThrow(teiEmbedRequestSchema, request.body);
  const model = modelFor(request, body.model ?? fallback, 'text-embedding');
  const inputs = asInputs(body.inputs);
  const out = await serve(request, model, 'embedding_request', { inputs: inputs.length },
    (ctx) => model.embedDense(inputs, choicesFrom(body, 'model'), ctx), INPUTS);
  return out.items.map(float32Row);
}

/** TEI's POST /embed_sparse: {index, value} pairs per input. */
async function embedSparse(request: FastifyRequest, fallback?: string) {
  const body = parseOrThrow(teiEmbedSparseRequestSchema, request.body);
  const model = modelFor(request, body.model ?? fallback, 'sparse-embedding');
  const inputs = asInputs(body.inputs);
  const out = await serve(request, model, 'embedding_request', { inputs: inputs.length, embedding_type: 'sparse' },
    (ctx) => model.embedSparse(inputs, choicesFrom(body, 'model'), ctx), INPUTS);
  return out.items.map((s) => s.indices.map((index, i) => ({ index, value: s.values[i]! })));
}

/** TEI's POST /embed_all: every token's vector before pooling. */
async function embedAll(request: FastifyRequest) {
  const body = parseOrThrow(teiEmbedAllRequestSchema, request.body);
  const model = modelFor(request, body.model, 'text-embedding');
  const inputs = asInputs(body.inputs);
  const out = await serve(request, model, 'embedding_request', { inputs: inputs.length, embedding_type: 'tokens' },
    (ctx) => model.embedTokens(inputs, choicesFrom(body, 'model'), ctx), INPUTS);
  return out.items.map((m) => float32Rows(m.data, m.dimensions));
}

/** TEI's POST /similarity: the cosine of each sentence with the source sentence. */
async function similarity(request: FastifyRequest): Promise<number[]> {
  const body = parseOrThrow(teiSimilarityRequestSchema, request.body);
  const model = modelFor(request, body.model, 'text-embedding');
  const { source_sentence: source, sentences } = body.inputs;
  // Errors name the field the client sent: the source is inputs.source_sentence, then sentences[i].
  const names = { param: 'inputs', name: (i: number) => (i === 0 ? 'inputs.source_sentence' : `inputs.sentences[${i - 1}]`) };
  const out = await serve(request, model, 'embedding_request', { inputs: sentences.length + 1 },
    (ctx) => model.embedDense([source, ...sentences], choicesFrom(body.parameters ?? {}), ctx), names);
  const [query, ...rows] = out.items.map(float32Row);
  return rows.map((row) => cosine(query!, row));
}

/**
 * TEI's POST /rerank: best first, a sigmoid over the logit for every model unless raw_scores
 * (TEI's own rule), and top_n when given, as llama.cpp's TEI-shaped route allows.
 */
async function rerank(request: FastifyRequest) {
  const body = parseOrThrow(teiRerankRequestSchema, request.body);
  const { ranked } = await rankDocuments(request, body.model, body.query, body.texts, {
    activation: body.raw_scores ? 'none' : 'sigmoid', truncate: body.truncate,
    truncateLeft: body.truncation_direction?.toLowerCase() === 'left',
  });
  return ranked
    .slice(0, body.top_n ?? body.texts.length)
    .map((r) => (body.return_text ? { ...r, text: body.texts[r.index]! } : r));
}

/** TEI's POST /predict, also what its root route does for a classifier; `fallback` as for embed. */
async function predict(request: FastifyRequest, fallback?: string): Promise<TeiPredictResponse> {
  const body = parseOrThrow(teiPredictRequestSchema, request.body);
  const batch = Array.isArray(body.inputs) && Array.isArray(body.inputs[0]);
  const inputs = ((batch ? body.inputs : [body.inputs]) as (string | string[])[]).map(asText);
  const model = modelFor(request, body.model ?? fallback, 'classify');
  const out = await serve(request, model, 'classify_request', { inputs: inputs.length }, (ctx) => model.classify(inputs, {
    raw: body.raw_scores, truncate: body.truncate, truncateLeft: body.truncation_direction?.toLowerCase() === 'left',
    // TEI's field is `inputs`; a single input is inputs itself.
  }, ctx), { param: 'inputs', name: (i) => (batch ? `inputs[${i}]` : 'inputs') });
  const predictions = out.items.map(bestFirst);
  return batch ? predictions : predictions[0]!;
}

/** TEI's POST /tokenize: spans are UTF-8 byte offsets, and special tokens have none. */
async function tokenize(request: FastifyRequest) {
  const body = parseOrThrow(teiTokenizeRequestSchema, request.body);
  const model = modelFor(request, body.model, 'text-embedding');
  const texts = typeof body.inputs === 'string' ? [body.inputs] : body.inputs;
  const out = await serve(request, model, 'tokenize_request', { inputs: texts.length },
    (ctx) => model.tokenize(texts, body.add_special_tokens, ctx), INPUTS);
  return out.items.map((tokens) => tokens.map(({ id, text, special, start, stop }) => (
    { id, text, special, start: special ? null : start, stop: special ? null : stop })));
}

/** TEI's POST /decode: one sequence or several, always answered as a list of texts. */
async function decode(request: FastifyRequest) {
  const body = parseOrThrow(teiDecodeRequestSchema, request.body);
  const model = modelFor(request, body.model, 'text-embedding');
  const sequences = typeof body.ids[0] === 'number' ? [body.ids as number[]] : (body.ids as number[][]);
  const out = await serve(request, model, 'tokenize_request', { inputs: sequences.length },
    (ctx) => model.detokenize(sequences, body.skip_special_tokens, ctx), { param: 'ids', name: (i) => `ids[${i}]` });
  return out.items;
}

/**
 * TEI serves inference at its root for its model's kind; huggingface_hub's InferenceClient posts
 * there. The body's shape picks similarity or rerank; otherwise the primary model's kind picks
 * embed, sparse embed or predict.
 */
async function root(request: FastifyRequest) {
  const raw = request.body;
  // Anything but an object gets its 400 from the embed route's parser.
  const body = (raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? raw : {}) as Record<string, unknown>;
  if (typeof body.inputs === 'object' && !Array.isArray(body.inputs)) return similarity(request);
  if ('texts' in body) return rerank(request);
  const model = request.server.registry.primary(typeof body.model === 'string' ? body.model : undefined);
  const capabilities = model.info?.capabilities;
  // Before its runner has described it, the primary model answers as an embedder (503 until ready).
  if (!capabilities || capabilities.includes('text-embedding')) return embed(request, model.name);
  if (capabilities.includes('classify')) return predict(request, model.name);
  if (capabilities.includes('sparse-embedding')) return embedSparse(request, model.name);
  // A reranker cannot take `inputs`; the one served embedding model, if there is one, can.
  return embed(request);
}

/** A TEI sequence as a classify input: a lone text, or a (text, text_pair) pair. */
function asText(sequence: string | string[]): ClassifyText {
  if (typeof sequence === 'string') return sequence;
  return sequence.length === 2 ? [sequence[0]!, sequence[1]!] : sequence[0]!;
}

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

const post = (path: string, summary: string, request: z.ZodType, response: z.ZodType | undefined, handle: Operation['handle']): Operation =>
  ({ method: 'post', path, tag: 'TEI', summary, request, response, handle });

/** Hugging Face text-embeddings-inference's routes, for clients moving from TEI; /rerank and /tokenize are shared (see shared-paths.ts). */
export const teiOperations: Operation[] = [
  post('/embed', 'Embeddings (TEI)', teiEmbedRequestSchema, z.array(z.array(z.number())), (r) => embed(r)),
  post('/embed_sparse', 'Sparse embeddings (TEI)', teiEmbedSparseRequestSchema,
    z.array(z.array(z.object({ index: z.number().int(), value: z.number() }))), (r) => embedSparse(r)),
  post('/embed_all', 'Every token\'s vector before pooling (TEI)', teiEmbedAllRequestSchema, teiEmbedAllResponseSchema, embedAll),
  post('/similarity', 'Sentence similarity (TEI)', teiSimilarityRequestSchema, teiSimilarityResponseSchema, similarity),
  post('/rerank', 'Rerank (TEI)', teiRerankRequestSchema, teiRerankResponseSchema, rerank),
  post('/predict', 'Sequence classification (TEI): texts or text pairs, every label best first', teiPredictRequestSchema, teiPredictResponseSchema, (r) => predict(r)),
  post('/tokenize', 'Tokenize (TEI)', teiTokenizeRequestSchema, teiTokenizeResponseSchema, tokenize),
  post('/decode', 'Token ids to text (TEI)', teiDecodeRequestSchema, undefined, decode),
  post('/', 'TEI\'s root route: similarity or rerank by the body, else embed, sparse embed or predict by the primary model\'s kind',
    z.union([teiEmbedRequestSchema, teiSimilarityRequestSchema, teiRerankRequestSchema]), undefined, root),
  infoOperation,
];
