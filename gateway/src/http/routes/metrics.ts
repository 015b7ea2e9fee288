import type { FastifyInstance } from 'fastify';

/** GET /metrics: the Prometheus text exposition of the gateway's registry. */
export default async function metricsRoute(app: FastifyInstance): Promise<void> {
  app.get('/metrics', async (_request, reply) => {
    // Runner memory is read when asked for, so the gauge is as fresh as the scrape.
    app.registry.sampleMemory();
    reply.header('content-type', app.metrics.registry.contentType);
    return app.metrics.registry.metrics();
  });
}
