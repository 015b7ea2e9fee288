import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { totalTokens, type CallContext, type EmbedChoices, type Inputs, type ModelService, type Outcome } from '../../services/model-service.ts';
import { embeddingsRequestSchema, type EmbeddingsRequest, type EmbeddingsResponse } from '../schemas/embeddings.ts';
import { asInputs, choicesFrom } from '../inputs.ts';
import { callContext, modelFor } from '../route-helpers.ts';
import { parseOrThrow } from '../validate.ts';
import { float32Row, float32Rows } from '../vectors.ts';
import { isQuantizedType, quantize } from '../quantize.ts';
import { ApiError } from '../../errors.ts';

type Embedding = EmbeddingsResponse['data'][number]['embedding'];

/** Computes the requested kind of embedding and shapes each item for the wire. */
async function compute(model: ModelService, texts: Inputs, body: EmbeddingsRequest, choices: EmbedChoices, ctx: CallContext): Promise<Outcome<Embedding>> {
  const base64 = body.encoding_format === 'base64';
  if (isQuantizedType(body.encoding_format) && body.embedding_type !== 'dense') {
    throw new ApiError('validation', `encoding_format ${body.encoding_format} is for dense vectors; use float or base64 with embedding_type ${body.embedding_type}.`, { param: 'encoding_format' });
  }
  if (body.embedding_type === 'sparse') {
    // Sparse vectors are always {indices, values}: there is no dense array to encode.
    return model.embedSparse(texts, choices, ctx);
  }
  if (body.embedding_type === 'colbert') {
    const out = await model.embedMultiVector(texts, choices, ctx);
    // base64 holds the token vectors back to back, row-major, as one little-endian float32 array.
    return { ...out, items: out.items.map((m) => (base64 ? m.data.toString('base64') : float32Rows(m.data, m.dimensions))) };
  }
  const format = body.encoding_format;
  if ((format === 'int8' || format === 'uint8') && choices.normalize === false) {
    // The int8 scale assumes unit vectors; an unnormalised one would be clamped out of shape.
    throw new ApiError('validation', `encoding_format ${format} needs normalised vectors; drop normalize: false or use float.`, { param: 'encoding_format' });
  }
  const out = await model.embedDense(texts, choices, ctx);
  if (isQuantizedType(format)) return { ...out, items: out.items.map((row) => quantize(float32Row(row), format)) };
  // base64 is the runner's bytes as they are: no float is touched on the way out.
  return { ...out, items: out.items.map((row) => (base64 ? row.toString('base64') : float32Row(row))) };
}

/** The capability each embedding_type needs from the model. */
const CAPABILITY = { dense: 'text-embedding', sparse: 'sparse-embedding', colbert: 'multi-vector' } as const;

/** Answers a request in OpenAI's embeddings shape; POST /embeddings delegates OpenAI-shaped bodies here. */
export async function openAiEmbeddings(app: FastifyInstance, request: FastifyRequest, reply: FastifyReply): Promise<EmbeddingsResponse> {
  const body = parseOrThrow(embeddingsRequestSchema, request.body);
  const model = modelFor(app, request, body.model, CAPABILITY[body.embedding_type]);
  const texts = asInputs(body.input);
  const choices = choicesFrom(body);
  const log = { model: model.name, inputs: texts.length, embedding_type: body.embedding_type, encoding_format: body.encoding_format };

  // A failure is logged once, rate-limited, by the error handler.
  const out = await compute(model, texts, body, choices, callContext(request));
  const promptTokens = totalTokens(out);
  request.log.info({
    ...log, tokens: promptTokens, cache_hits: out.cacheHits, queue_ms: round(out.queueMs),
    inference_ms: round(out.inferenceMs), total_ms: round(reply.elapsedTime), status: 200,
  }, 'embedding_request');
  return {
    object: 'list',
    data: out.items.map((embedding, index) => ({ object: 'embedding', index, embedding })),
    // The served model's own name, also when the request used an alias or named none.
    model: model.name,
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
  };
}

/** POST /v1/embeddings: the OpenAI embeddings API, plus a few documented extensions. */
export default async function embeddingsRoute(app: FastifyInstance): Promise<void> {
  app.post('/v1/embeddings', (request, reply) => openAiEmbeddings(app, request, reply));
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;
