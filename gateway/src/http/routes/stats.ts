import type { OutgoingHttpHeaders } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../errors.ts';
import type { StatsSample } from '../../services/stats-sample.ts';

/**
 * GET /stats: the live traffic series held so far (services/traffic-stats.ts), for a page that
 * opens late. GET /stats/stream: each new sample as a server-sent event `sample`, once a second.
 * Both are data routes, so they take the API key when one is set; a page sends it with fetch,
 * since EventSource cannot send headers.
 */
export default async function statsRoutes(app: FastifyInstance): Promise<void> {
  const open = new Set<() => void>();
  let closing = false;
  // A stream never ends by itself, so a draining server ends them rather than wait for them.
  app.addHook('preClose', async () => {
    closing = true;
    for (const end of open) end();
  });

  app.get('/stats', async () => ({ interval_ms: app.stats.intervalMs, samples: app.stats.samples }));

  app.get('/stats/stream', (request, reply) => {
    if (closing) throw new ApiError('unavailable', 'The server is shutting down.', { retryAfterS: 1 });
    reply.hijack();
    const res = reply.raw;
    if (res.destroyed) return; // the client left before its stream began
    res.writeHead(200, {
      ...(reply.getHeaders() as OutgoingHttpHeaders), // CORS and the request id, set by hooks
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
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
