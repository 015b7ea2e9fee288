import type { OutgoingHttpHeaders } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { statsSampleSchema, type StatsSample } from '../core/stats-sample.ts';
import type { TrafficStats } from '../core/traffic-stats.ts';
import type { Operation } from '../dialects/operation.ts';
import { ApiError } from '../errors.ts';

/** GET /stats: the series so far, oldest first, and the sampling interval. */
export const statsSchema = z.object({
  interval_ms: z.number().int(),
  samples: z.array(statsSampleSchema),
});

/**
 * The open event streams of each app, which a draining server ends rather than waits for; keyed
 * by the app's series, which its route scopes share.
 */
const streams = new WeakMap<TrafficStats, { closing: boolean; open: Set<() => void> }>();

function streamsOf(stats: TrafficStats) {
  let entry = streams.get(stats);
  if (!entry) streams.set(stats, (entry = { closing: false, open: new Set() }));
  return entry;
}

/** Ends every stream of the app's stats, and refuses new ones; called as the app starts closing. */
export function endStatsStreams(app: FastifyInstance): void {
  const entry = streamsOf(app.stats);
  entry.closing = true;
  for (const end of entry.open) end();
}

/** GET /stats/stream: each new sample as a server-sent event `sample`, once a second. */
function stream(request: FastifyRequest, reply: FastifyReply): void {
  const app = request.server;
  const entry = streamsOf(app.stats);
  if (entry.closing) throw new ApiError('unavailable', 'The server is shutting down.', { retryAfterS: 1 });
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
    entry.open.delete(end);
    res.end();
  };
  app.stats.on('sample', send);
  entry.open.add(end);
  res.on('close', end);
}

/**
 * The live traffic series (core/traffic-stats.ts), held so far for a page that opens late, and
 * as a stream. Both are data routes, so they take the API key when one is set; a page sends it
 * with fetch, since EventSource cannot send headers.
 */
export const statsOperations: Operation[] = [
  { method: 'get', path: '/stats', tag: 'Operations', summary: 'Live traffic series, one sample a second for the last 5 minutes, from the /metrics counters',
    response: statsSchema, handle: async (request) => ({ interval_ms: request.server.stats.intervalMs, samples: request.server.stats.samples }) },
  { method: 'get', path: '/stats/stream', tag: 'Operations', summary: 'Each new traffic sample as a server-sent event `sample`, once a second', handle: stream },
];
