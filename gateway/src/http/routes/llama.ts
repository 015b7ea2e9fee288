import type { FastifyInstance } from 'fastify';
import { asInputs, choicesFrom } from '../inputs.ts';
import { callContext, modelFor } from '../route-helpers.ts';
import { detokenizeRequestSchema, llamaEmbeddingRequestSchema, llamaTokenizeRequestSchema } from '../schemas/llama.ts';
import { teiTokenizeRequestSchema } from '../schemas/tei.ts';
import { parseOrThrow } from '../validate.ts';
import { float32Row, llamaNormalize } from '../vectors.ts';
import { openAiEmbeddings } from './embeddings.ts';

/**
 * The one rule for POST /embeddings, which two peers' clients share. llama.cpp's clients send
 * `content`, or `input` alone, and get llama.cpp's bare list. The OpenAI SDKs, pointed at a base
 * URL without /v1 (as Infinity's users do), always send `model` and `encoding_format`, and get
 * OpenAI's shape: a body with `input` and either of those is answered as /v1/embeddings would.
 */
export function isOpenAiShaped(body: unknown): boolean {
  if (body === null || typeof body !== 'object') return false;
  const b = body as Record<string, unknown>;
  // body.ts has already dropped null fields.
  const has = (key: string) => b[key] !== undefined;
  return !has('content') && has('input') && (has('model') || has('encoding_format'));
}

/** llama.cpp server's own routes, and POST /tokenize, which TEI shares with it. */
export default async function llamaRoutes(app: FastifyInstance): Promise<void> {
  // llama.cpp's non-OpenAI embeddings: one nested vector per input, normalised as embd_normalize
  // says. Token ids are the model's own, as in llama.cpp.
  for (const path of ['/embedding', '/embeddings']) {
    app.post(path, async (request, reply) => {
      if (path === '/embeddings' && isOpenAiShaped(request.body)) return openAiEmbeddings(app, request, reply);
      const body = parseOrThrow(llamaEmbeddingRequestSchema, request.body);
      const model = modelFor(app, request, body.model, 'text-embedding');
      // The model's own normalisation is skipped so that embd_normalize alone decides.
      const choices = { ...choicesFrom(body, 'model'), normalize: false };
      const out = await model.embedDense(asInputs((body.content ?? body.input)!), choices, callContext(request));
      return out.items.map((row, index) => ({ index, embedding: [llamaNormalize(float32Row(row), body.embd_normalize)] }));
    });
  }

  // One path, two peers' shapes: llama.cpp sends `content`, TEI sends `inputs`.
  app.post('/tokenize', async (request) => {
    const raw = request.body as Record<string, unknown> | undefined;
    if (raw && typeof raw === 'object' && 'inputs' in raw) {
      const body = parseOrThrow(teiTokenizeRequestSchema, raw);
      const model = modelFor(app, request, body.model, 'text-embedding');
      const texts = typeof body.inputs === 'string' ? [body.inputs] : body.inputs;
      const tokenized = await model.tokenize(texts, body.add_special_tokens, callContext(request));
      // TEI gives special tokens no span.
      return tokenized.map((tokens) => tokens.map(({ id, text, special, start, stop }) => (
        { id, text, special, start: special ? null : start, stop: special ? null : stop })));
    }
    const body = parseOrThrow(llamaTokenizeRequestSchema, raw);
    const model = modelFor(app, request, body.model, 'text-embedding');
    const [tokens] = await model.tokenize([body.content], body.add_special, callContext(request));
    return { tokens: tokens!.map((t) => (body.with_pieces ? { id: t.id, piece: t.text } : t.id)) };
  });

  app.post('/detokenize', async (request) => {
    const body = parseOrThrow(detokenizeRequestSchema, request.body);
    const model = modelFor(app, request, body.model, 'text-embedding');
    if (body.tokens.length === 0) return { content: '' };
    const [content] = await model.detokenize([body.tokens], false, callContext(request));
    return { content };
  });
}
