import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Operation } from '../dialects/operation.ts';

/**
 * GET /health and GET /health/ready: 200 while every preloaded model (PRELOAD) is ready, else
 * 503 with Retry-After; models that load on demand do not hold readiness back. The body gives
 * every model's state and each runner's, with the reason when one failed (a hold-down after
 * repeated crashes, a load that failed).
 */
function readiness(request: FastifyRequest, reply: FastifyReply) {
  const { registry } = request.server;
  const models = Object.fromEntries(registry.models.map((m) => [
    m.name,
    {
      state: m.lifecycle.state,
      reason: m.lifecycle.reason ?? null,
      runners: m.runnerViews.map(({ device, state, restarts, reason }) => ({ device, state, restarts, reason })),
    },
  ]));
  const ok = registry.allReady;
  reply.code(ok ? 200 : 503);
  if (!ok) reply.header('retry-after', '2');
  return { status: ok ? 'ok' : 'unavailable', models };
}

/**
 * Health for people and for Kubernetes probes. GET /health/live is 200 whenever the gateway can
 * answer at all: a liveness probe that restarts the pod only when the process itself is stuck,
 * not while a model loads or a runner restarts.
 */
export const healthOperations: Operation[] = [
  { method: 'get', path: '/health', tag: 'Operations', summary: '200 while every preloaded model is ready, else 503; every model\'s state', handle: readiness },
  { method: 'get', path: '/health/ready', tag: 'Operations', summary: 'Readiness probe: the same answer as /health', handle: readiness },
  { method: 'get', path: '/health/live', tag: 'Operations', summary: 'Liveness probe: 200 while the gateway answers', handle: async () => ({ status: 'ok' }) },
];
