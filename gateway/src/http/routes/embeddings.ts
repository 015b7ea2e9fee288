import type { FastifyInstance } from 'fastify';
import type { CallContext, EmbedChoices, Inputs, ModelService, Outcome } from '../../services/model-service.ts';
import { embeddingsRequestSchema, type EmbeddingsRequest, type EmbeddingsResponse } from '../schemas/embeddings.ts';
import { asInputs, choicesFrom } from '../inputs.ts';
import { callContext, modelFor } from '../route-helpers.ts';
import { parseOrThrow } from '../validate.ts';
import { float32Row, float32Rows } from '../vectors.ts';

type Embedding = EmbeddingsResponse['data'][number]['embedding'];

/** Computes the requested kind of embedding and shapes each item for the wire. */
async function compute(model: ModelService, texts: Inputs, body: EmbeddingsRequest, choices: EmbedChoices, ctx: CallContext): Promise<Outcome<Embedding>> {
  const base64 = body.encoding_format === 'base64';
  if (body.embedding_type === 'sparse') {
    // Sparse vectors are always {indices, values}: there is no dense array to encode.
    return model.embedSparse(texts, choices, ctx);
  }
  if (body.embedding_type === 'colbert') {
    const out = await model.embedMultiVector(texts, choices, ctx);
    // base64 holds the token vectors back to back, row-major, as one little-endian float32 array.
    return { ...out, items: out.items.map((m) => (base64 ? m.data.toString('base64') : float32Rows(m.data, m.dimensions))) };
  }
  const out = await model.embedDense(texts, choices, ctx);
  // base64 is the runner's bytes as they are: no float is touched on the way out.
  return { ...out, items: out.items.map((row) => (base64 ? row.toString('base64') : float32Row(row))) };
}

/** POST /v1/embeddings: the OpenAI embeddings API, plus a few documented extensions. */
export default async function embeddingsRoute(app: FastifyInstance): Promise<void> {
  app.post('/v1/embeddings', async (request, reply): Promise<EmbeddingsResponse> => {
    const body = parseOrThrow(embeddingsRequestSchema, request.body);
    const model = modelFor(app, request, body.model, 'text-embedding');
    const texts = asInputs(body.input);
    const choices = choicesFrom(body);
    const log = { model: body.model, inputs: texts.length, embedding_type: body.embedding_type, encoding_format: body.encoding_format };

    // A failure is logged once, rate-limited, by the error handler.
    const out = await compute(model, texts, body, choices, callContext(request));
    const promptTokens = out.tokens.reduce((a, b) => a + b, 0);
    request.log.info({
      ...log, tokens: promptTokens, cache_hits: out.cacheHits, queue_ms: round(out.queueMs),
      inference_ms: round(out.inferenceMs), total_ms: round(reply.elapsedTime), status: 200,
    }, 'embedding_request');
    return {
      object: 'list',
      data: out.items.map((embedding, index) => ({ object: 'embedding', index, embedding })),
      model: body.model,
      usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
    };
  });
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;
