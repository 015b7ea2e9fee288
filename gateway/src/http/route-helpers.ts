import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { CallContext, ModelService } from '../services/model-service.ts';

/** What the service needs from a request: its id, and a signal for a client that left. */
export function callContext(request: FastifyRequest): CallContext {
  return { requestId: request.id, signal: request.abortSignal };
}

/**
 * The model a request addresses: the named one, or for routes whose peers serve a single
 * model, the first that can do `capability`. Labels the request's metrics with it.
 */
export function modelFor(app: FastifyInstance, request: FastifyRequest, name: string | undefined, capability: string): ModelService {
  const model = app.registry.resolve(name, capability);
  request.modelName = model.name;
  return model;
}
