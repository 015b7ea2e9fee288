import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../errors.ts';
import type { CallContext, ModelService } from '../services/model-service.ts';

/** What the service needs from a request: its id, and a signal for a client that left. */
export function callContext(request: FastifyRequest): CallContext {
  return { requestId: request.id, signal: request.abortSignal };
}

/**
 * The model a request addresses: the named one (or alias), or for a request naming none, the
 * default for `capability` (see ModelRegistry.resolve). Labels the request's metrics with it.
 */
export function modelFor(app: FastifyInstance, request: FastifyRequest, name: string | undefined, capability: string): ModelService {
  const model = app.registry.resolve(name, capability);
  request.modelName = model.name;
  return model;
}

/**
 * Runs work and reports the service's errors about `input[i]` in the dialect's own terms: the
 * service numbers what it was given, while the client knows its fields (`inputs`, `texts`,
 * `inputs.sentences[2]`). `field` names input i; `param` is the top-level field.
 */
export async function renameInputErrors<T>(work: () => Promise<T>, field: (index: number) => string, param: string): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (!(err instanceof ApiError) || err.param !== 'input') throw err;
    const message = err.message.replace(/^input\[(\d+)\]/, (_, i: string) => field(Number(i)));
    throw new ApiError(err.kind, message, { param, code: err.code, retryAfterS: err.retryAfterS, cause: err });
  }
}
