import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Operation } from '../dialects/operation.ts';

/** GET /metrics: the Prometheus text exposition of the gateway's registry. */
async function metrics(request: FastifyRequest, reply: FastifyReply) {
  const { registry, metrics } = request.server;
  // Runner memory is read when asked for, so the gauge is as fresh as the scrape.
  registry.sampleMemory();
  reply.header('content-type', metrics.registry.contentType);
  return metrics.registry.metrics();
}

/** Served while ENABLE_METRICS is on. */
export const metricsOperations: Operation[] = [
  { method: 'get', path: '/metrics', tag: 'Operations', summary: 'Prometheus metrics', enabled: (settings) => settings.ENABLE_METRICS, handle: metrics },
];
