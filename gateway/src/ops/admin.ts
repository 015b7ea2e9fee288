import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Operation } from '../dialects/operation.ts';
import { describeModel } from '../dialects/openai/models.ts';
import { modelObjectSchema } from '../dialects/openai/model-schemas.ts';
import { parseOrThrow } from '../dialects/shared/validate.ts';
import { ApiError } from '../errors.ts';

/** Body of POST /admin/models/{model}/pin; an empty body pins. */
export const adminPinSchema = z.strictObject({
  /** true pins the model, false unpins it. */
  pinned: z.boolean().optional(),
});

const model = (request: FastifyRequest) => request.server.registry.get((request.params as { model: string }).model);

/** Loads it now, as a first request would, waiting up to LOAD_TIMEOUT_S. */
async function load(request: FastifyRequest) {
  const m = model(request);
  (await m.lifecycle.acquire())();
  return describeModel(m.name, m, null);
}

/** Stops it; refused while requests hold it, so that none is dropped. */
async function unload(request: FastifyRequest) {
  const m = model(request);
  if (m.lifecycle.busy) {
    throw new ApiError('conflict', `Model '${m.name}' is serving requests; unload it once they are done.`, { code: 'model_busy' });
  }
  await m.lifecycle.unload('admin');
  return describeModel(m.name, m, null);
}

/** A pinned model is never unloaded for idleness or for room; `{"pinned": false}` unpins. */
async function pin(request: FastifyRequest) {
  const m = model(request);
  const body = parseOrThrow(adminPinSchema, request.body ?? {});
  m.lifecycle.pin(body.pinned ?? true);
  return describeModel(m.name, m, null);
}

/** The model settings and the catalog, read again from the environment, .env and MODEL_CONFIG. */
async function reload(request: FastifyRequest) {
  const { reload } = request.server;
  if (!reload) throw new ApiError('not_found', 'This server cannot reload its models.', { code: 'not_found' });
  try {
    return await reload();
  } catch (err) {
    if (err instanceof ApiError) throw err;
    throw new ApiError('validation', `Nothing changed: ${(err as Error).message}`, { code: 'invalid_config' });
  }
}

const onModel = (action: string, summary: string, handle: Operation['handle'], request?: z.ZodType): Operation => ({
  method: 'post', path: `/admin/models/{model}/${action}`, tag: 'Admin', params: ['model'], summary, request, response: modelObjectSchema, handle,
});

/**
 * Operators' control of what is loaded: load, unload and pin a model by name or alias, each
 * answering the model as /v1/models lists it, and reload the model settings (as SIGHUP does).
 * Protected by ADMIN_API_KEY, or by API_KEY when that is the only key set (see http/auth.ts).
 */
export const adminOperations: Operation[] = [
  onModel('load', 'Load a model now', load),
  onModel('unload', 'Stop a model\'s runners (409 while requests hold it)', unload),
  onModel('pin', 'Pin (or with `{"pinned": false}` unpin) a model', pin, adminPinSchema),
  { method: 'post', path: '/admin/reload', tag: 'Admin', summary: 'Re-read the model settings and the catalog, as SIGHUP does; answers what was added, removed and replaced', handle: reload },
];
