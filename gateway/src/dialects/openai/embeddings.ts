import type { FastifyRequest } from 'fastify';
import { ApiError } from '../../errors.ts';
import { modelFor, serve, type Served } from '../../core/request-scope.ts';
import type { EmbedChoices, Inputs, ModelService } from '../../core/model-service.ts';
import type { Operation } from '../operation.ts';
import { asInputs, choicesFrom } from '../shared/inputs.ts';
import { isQuantizedType, quantize } from '../shared/quantize.ts';
import { parseOrThrow } from '../shared/validate.ts';
import { float32Row, float32Rows } from '../shared/vectors.ts';
import { embeddingsRequestSchema, embeddingsResponseSchema, type EmbeddingsRequest, type EmbeddingsResponse } from './schemas.ts';

type Embedding = EmbeddingsResponse['data'][number]['embedding'];

/** The capability each embedding_type needs from the model. */
const CAPABILITY = { dense: 'text-embedding', sparse: 'sparse-embedding', colbert: 'multi-vector' } as const;

/** Computes the requested kind of embedding and shapes each item for the wire. */
async function compute(request: FastifyRequest, model: ModelService, texts: Inputs, body: EmbeddingsRequest): Promise<Served<Embedding>> {
  const choices: EmbedChoices = choicesFrom(body);
  const base64 = body.encoding_format === 'base64';
  const format = body.encoding_format;
  if (isQuantizedType(format) && body.embedding_type !== 'dense') {
    throw new ApiError('validation', `encoding_format ${format} is for dense vectors; use float or base64 with embedding_type ${body.embedding_type}.`, { param: 'encoding_format' });
  }
  if ((format === 'int8' || format === 'uint8') && choices.normalize === false) {
    // The int8 scale assumes unit vectors; an unnormalised one would be clamped out of shape.
    throw new ApiError('validation', `encoding_format ${format} needs normalised vectors; drop normalize: false or use float.`, { param: 'encoding_format' });
  }
  const log = { inputs: texts.length, embedding_type: body.embedding_type, encoding_format: format };
  if (body.embedding_type === 'sparse') {
    // Sparse vectors are always {indices, values}: there is no dense array to encode.
    return serve(request, model, 'embedding_request', log, (ctx) => model.embedSparse(texts, choices, ctx));
  }
  if (body.embedding_type === 'colbert') {
    const out = await serve(request, model, 'embedding_request', log, (ctx) => model.embedMultiVector(texts, choices, ctx));
    // base64 holds the token vectors back to back, row-major, as one little-endian float32 array.
    return { ...out, items: out.items.map((m) => (base64 ? m.data.toString('base64') : float32Rows(m.data, m.dimensions))) };
  }
  const out = await serve(request, model, 'embedding_request', log, (ctx) => model.embedDense(texts, choices, ctx));
  if (isQuantizedType(format)) return { ...out, items: out.items.map((row) => quantize(float32Row(row), format)) };
  // base64 is the runner's bytes as they are: no float is touched on the way out.
  return { ...out, items: out.items.map((row) => (base64 ? row.toString('base64') : float32Row(row))) };
}

/** Answers a request in OpenAI's embeddings shape. */
async function embeddings(request: FastifyRequest): Promise<EmbeddingsResponse> {
  const body = parseOrThrow(embeddingsRequestSchema, request.body);
  const model = modelFor(request, body.model, CAPABILITY[body.embedding_type]);
  const out = await compute(request, model, asInputs(body.input), body);
  return {
    object: 'list',
    data: out.items.map((embedding, index) => ({ object: 'embedding', index, embedding })),
    model: out.model,
    usage: { prompt_tokens: out.tokens, total_tokens: out.tokens },
  };
}

/**
 * The OpenAI embeddings API, plus a few documented extensions. POST /embeddings is also where
 * the OpenAI SDKs land when pointed at a base URL without /v1 (as Infinity's users do); llama.cpp
 * shares that path (see shared-paths.ts).
 */
export const embeddingOperations: Operation[] = ['/v1/embeddings', '/embeddings'].map((path) => ({
  method: 'post', path, tag: 'OpenAI', summary: 'Embeddings (OpenAI), with extensions',
  request: embeddingsRequestSchema, response: embeddingsResponseSchema, handle: embeddings,
}));
