import type { FastifyInstance, FastifyReply } from 'fastify';

/**
 * Health for people and for Kubernetes probes.
 *
 * GET /health and GET /health/ready: 200 while every preloaded model (PRELOAD) is ready, else
 * 503 with Retry-After; models that load on demand do not hold readiness back. The body gives
 * every model's state and each runner's, with the reason when one failed (a hold-down after
 * repeated crashes, a load that failed).
 * GET /health/live: 200 whenever the gateway can answer at all; a liveness probe that restarts
 * the pod only when the process itself is stuck, not while a model loads or a runner restarts.
 */
export default async function healthRoute(app: FastifyInstance): Promise<void> {
  const readiness = async (_request: unknown, reply: FastifyReply) => {
    const models = Object.fromEntries(app.registry.models.map((m) => [
      m.name,
      {
        state: m.lifecycle.state,
        reason: m.lifecycle.reason ?? null,
        runners: m.runners.map((r) => ({ device: r.device, state: r.state, restarts: r.restarts, reason: r.reason })),
      },
    ]));
    const ok = app.registry.allReady;
    reply.code(ok ? 200 : 503);
    if (!ok) reply.header('retry-after', '2');
    return { status: ok ? 'ok' : 'unavailable', models };
  };
  app.get('/health', readiness);
  app.get('/health/ready', readiness);
  app.get('/health/live', async () => ({ status: 'ok' }));
}
