import type { FastifyInstance } from 'fastify';

/** GET /metrics: the Prometheus text exposition of the gateway's registry. */
export default async function metricsRoute(app: FastifyInstance): Promise<void> {
  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', app.metrics.registry.contentType);
    return app.metrics.registry.metrics();
  });
}
