import type { FastifyInstance } from 'fastify';
import { parseOrThrow } from '../validate.ts';
import { embeddingsRequestSchema, type EmbeddingsResponse } from '../schemas/embeddings.ts';
import { toHttpError } from '../error-envelope.ts';
import { float32Row } from '../vectors.ts';

/** POST /v1/embeddings: the OpenAI embeddings API. */
export default async function embeddingsRoute(app: FastifyInstance): Promise<void> {
  app.post('/v1/embeddings', async (request, reply): Promise<EmbeddingsResponse> => {
    const body = parseOrThrow(embeddingsRequestSchema, request.body);
    request.modelName = body.model;
    const model = app.registry.get(body.model);
    const texts = typeof body.input === 'string' ? [body.input] : body.input;

    let out;
    try {
      out = await model.embedDense(texts, { kind: 'document', dimensions: body.dimensions }, { requestId: request.id, signal: request.abortSignal });
    } catch (err) {
      request.log.info({ model: body.model, inputs: texts.length, status: toHttpError(err).status }, 'embedding_request');
      throw err;
    }
    const promptTokens = out.tokens.reduce((a, b) => a + b, 0);
    request.log.info({
      model: body.model, inputs: texts.length, tokens: promptTokens, cache_hits: out.cacheHits,
      queue_ms: round(out.queueMs), inference_ms: round(out.inferenceMs), total_ms: round(reply.elapsedTime),
      encoding_format: body.encoding_format, status: 200,
    }, 'embedding_request');
    return {
      object: 'list',
      data: out.items.map((row, index) => ({
        object: 'embedding',
        index,
        // base64 is the runner's bytes as they are: no float is touched on the way out.
        embedding: body.encoding_format === 'base64' ? row.toString('base64') : float32Row(row),
      })),
      model: body.model,
      usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
    };
  });
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;
