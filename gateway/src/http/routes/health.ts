import type { FastifyInstance } from 'fastify';

/**
 * GET /health: 200 only while every runner of every model is ready; the readiness probe. Each
 * runner's state comes with the reason it is not ready, e.g. a hold-down after repeated crashes.
 */
export default async function healthRoute(app: FastifyInstance): Promise<void> {
  app.get('/health', async (_request, reply) => {
    const models = Object.fromEntries(app.registry.models.map((m) => [
      m.name,
      m.runners.map((r) => ({ device: r.device, state: r.state, restarts: r.restarts, reason: r.reason })),
    ]));
    const ok = app.registry.allReady;
    reply.code(ok ? 200 : 503);
    if (!ok) reply.header('retry-after', '2');
    return { status: ok ? 'ok' : 'unavailable', models };
  });
}
