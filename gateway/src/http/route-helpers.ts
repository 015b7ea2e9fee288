import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { CallContext, ModelService } from '../services/model-service.ts';

/** What the service needs from a request: its id, a signal for a client that left, and its trace. */
export function callContext(request: FastifyRequest): CallContext {
  return { requestId: request.id, signal: request.abortSignal, trace: request.trace };
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
