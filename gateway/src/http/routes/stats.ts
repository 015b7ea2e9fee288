import type { FastifyInstance } from 'fastify';
import type { StatsSample } from '../schemas/stats.ts';

/**
 * GET /stats: the live traffic series held so far (services/traffic-stats.ts), for a page that
 * opens late. GET /stats/stream: each new sample as a server-sent event `sample`, once a second.
 * Both are data routes, so they take the API key when one is set; a page sends it with fetch,
 * since EventSource cannot send headers.
 */
export default async function statsRoutes(app: FastifyInstance): Promise<void> {
  const open = new Set<() => void>();
  // A stream never ends by itself, so a draining server ends them rather than wait for them.
  app.addHook('preClose', async () => {
    for (const end of open) end();
  });

  app.get('/stats', async () => ({ interval_ms: app.stats.intervalMs, samples: app.stats.samples }));

  app.get('/stats/stream', (request, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      'x-request-id': request.id,
      // Proxies such as nginx would otherwise hold the events back in a buffer.
      'x-accel-buffering': 'no',
    });
    res.write(`retry: ${app.stats.intervalMs}\n\n`);
    const send = (sample: StatsSample) => res.write(`event: sample\ndata: ${JSON.stringify(sample)}\n\n`);
    const end = () => {
      app.stats.off('sample', send);
      open.delete(end);
      res.end();
    };
    app.stats.on('sample', send);
    open.add(end);
    res.on('close', end);
  });
}
