import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../../errors.ts';
import { adminPinSchema } from '../schemas/admin.ts';
import { parseOrThrow } from '../validate.ts';
import { describeModel } from './models.ts';

/**
 * Operators' control of what is loaded: load, unload and pin a model by name or alias, each
 * answering the model as /v1/models lists it, and reload the model settings (as SIGHUP does).
 * Protected by ADMIN_API_KEY, or by API_KEY when that is the only key set (see auth.ts).
 */
export default async function adminRoutes(app: FastifyInstance): Promise<void> {
  const model = (request: FastifyRequest) => app.registry.get((request.params as { model: string }).model);

  // Loads it now, as a first request would, waiting up to LOAD_TIMEOUT_S.
  app.post('/admin/models/:model/load', async (request) => {
    const m = model(request);
    (await m.lifecycle.acquire())();
    return describeModel(m.name, m, null);
  });

  // Stops it; refused while requests hold it, so that none is dropped.
  app.post('/admin/models/:model/unload', async (request) => {
    const m = model(request);
    if (m.lifecycle.busy) {
      throw new ApiError('conflict', `Model '${m.name}' is serving requests; unload it once they are done.`, { code: 'model_busy' });
    }
    await m.lifecycle.unload('admin');
    return describeModel(m.name, m, null);
  });

  // The model settings and the catalog, read again from the environment, .env and MODEL_CONFIG.
  app.post('/admin/reload', async () => {
    if (!app.reload) throw new ApiError('not_found', 'This server cannot reload its models.', { code: 'not_found' });
    try {
      return await app.reload();
    } catch (err) {
      if (err instanceof ApiError) throw err;
      throw new ApiError('validation', `Nothing changed: ${(err as Error).message}`, { code: 'invalid_config' });
    }
  });

  // A pinned model is never unloaded for idleness or for room; `{"pinned": false}` unpins.
  app.post('/admin/models/:model/pin', async (request) => {
    const m = model(request);
    const body = parseOrThrow(adminPinSchema, request.body ?? {});
    m.lifecycle.pin(body.pinned ?? true);
    return describeModel(m.name, m, null);
  });
}
