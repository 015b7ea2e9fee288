import type { FastifyInstance } from 'fastify';
import type { ModelList } from '../schemas/models.ts';

// Models have no creation date of their own; the gateway's start time stands in for it.
const STARTED = Math.floor(Date.now() / 1000);

/** GET /v1/models: the served models in OpenAI's list shape, with their vector sizes. */
export default async function modelsRoute(app: FastifyInstance): Promise<void> {
  app.get('/v1/models', async (): Promise<ModelList> => ({
    object: 'list',
    data: app.registry.models.map((m) => ({
      id: m.name,
      object: 'model',
      created: STARTED,
      owned_by: 'edge-embed',
      dimensions: m.info?.dimensions ?? null,
      max_tokens: m.info?.max_tokens ?? null,
      capabilities: m.info?.capabilities ?? [],
      prompt_names: m.info?.prompt_names ?? [],
      matryoshka_dims: m.info?.matryoshka_dims ?? [],
      ready: m.ready,
    })),
  }));
}
