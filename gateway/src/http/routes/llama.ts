import type { FastifyInstance } from 'fastify';
import { asInputs, choicesFrom } from '../inputs.ts';
import { callContext, modelFor } from '../route-helpers.ts';
import {
  decodeRequestSchema, detokenizeRequestSchema, llamaEmbeddingRequestSchema, llamaTokenizeRequestSchema, teiTokenizeRequestSchema,
} from '../schemas/llama.ts';
import { parseOrThrow } from '../validate.ts';
import { float32Row, llamaNormalize } from '../vectors.ts';

/** llama.cpp server's own routes (and TEI's /tokenize and /decode, which share paths with them). */
export default async function llamaRoutes(app: FastifyInstance): Promise<void> {
  // llama.cpp's non-OpenAI embeddings: one nested vector per input, normalised as embd_normalize says.
  for (const path of ['/embedding', '/embeddings']) {
    app.post(path, async (request) => {
      const body = parseOrThrow(llamaEmbeddingRequestSchema, request.body);
      const model = modelFor(app, request, body.model, 'text-embedding');
      // The model's own normalisation is skipped so that embd_normalize alone decides.
      const out = await model.embedDense(asInputs((body.content ?? body.input)!), { ...choicesFrom(body), normalize: false }, callContext(request));
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
      return model.tokenize(texts, body.add_special_tokens, callContext(request));
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

  // TEI's /decode: one sequence or several, always answered as a list of texts.
  app.post('/decode', async (request) => {
    const body = parseOrThrow(decodeRequestSchema, request.body);
    const model = modelFor(app, request, body.model, 'text-embedding');
    const sequences = typeof body.ids[0] === 'number' ? [body.ids as number[]] : (body.ids as number[][]);
    return model.detokenize(sequences, body.skip_special_tokens, callContext(request));
  });
}
