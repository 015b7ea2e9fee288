import type { FastifyInstance } from 'fastify';
import { asInputs, choicesFrom } from '../inputs.ts';
import {
  decodeRequestSchema, detokenizeRequestSchema, llamaEmbeddingRequestSchema, llamaTokenizeRequestSchema, teiTokenizeRequestSchema,
} from '../schemas/llama.ts';
import { parseOrThrow } from '../validate.ts';
import { float32Row, llamaNormalize } from '../vectors.ts';

/** llama.cpp server's own routes (and TEI's /tokenize and /decode, which share paths with them). */
export default async function llamaRoutes(app: FastifyInstance): Promise<void> {
  const ctx = (request: { id: string; abortSignal: AbortSignal }) => ({ requestId: request.id, signal: request.abortSignal });

  // llama.cpp's non-OpenAI embeddings: one nested vector per input, normalised as embd_normalize says.
  for (const path of ['/embedding', '/embeddings']) {
    app.post(path, async (request) => {
      const body = parseOrThrow(llamaEmbeddingRequestSchema, request.body);
      const model = app.registry.resolve(body.model, 'text-embedding');
      request.modelName = model.name;
      // The model's own normalisation is skipped so that embd_normalize alone decides.
      const out = await model.embedDense(asInputs((body.content ?? body.input)!), { ...choicesFrom(body), normalize: false }, ctx(request));
      return out.items.map((row, index) => ({ index, embedding: [llamaNormalize(float32Row(row), body.embd_normalize)] }));
    });
  }

  // One path, two peers' shapes: llama.cpp sends `content`, TEI sends `inputs`.
  app.post('/tokenize', async (request) => {
    const raw = request.body as Record<string, unknown> | undefined;
    if (raw && typeof raw === 'object' && 'inputs' in raw) {
      const body = parseOrThrow(teiTokenizeRequestSchema, raw);
      const model = app.registry.resolve(body.model, 'text-embedding');
      request.modelName = model.name;
      const texts = typeof body.inputs === 'string' ? [body.inputs] : body.inputs;
      return model.tokenize(texts, body.add_special_tokens, ctx(request));
    }
    const body = parseOrThrow(llamaTokenizeRequestSchema, raw);
    const model = app.registry.resolve(body.model, 'text-embedding');
    request.modelName = model.name;
    const [tokens] = await model.tokenize([body.content], body.add_special, ctx(request));
    return { tokens: tokens!.map((t) => (body.with_pieces ? { id: t.id, piece: t.text } : t.id)) };
  });

  app.post('/detokenize', async (request) => {
    const body = parseOrThrow(detokenizeRequestSchema, request.body);
    const model = app.registry.resolve(body.model, 'text-embedding');
    request.modelName = model.name;
    if (body.tokens.length === 0) return { content: '' };
    const [content] = await model.detokenize([body.tokens], false, ctx(request));
    return { content };
  });

  // TEI's /decode: one sequence or several, always answered as a list of texts.
  app.post('/decode', async (request) => {
    const body = parseOrThrow(decodeRequestSchema, request.body);
    const model = app.registry.resolve(body.model, 'text-embedding');
    request.modelName = model.name;
    const sequences = typeof body.ids[0] === 'number' ? [body.ids as number[]] : (body.ids as number[][]);
    return model.detokenize(sequences, body.skip_special_tokens, ctx(request));
  });
}
