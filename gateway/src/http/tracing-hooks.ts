import type { FastifyInstance } from 'fastify';
import { contextOf, endSpan, startServerSpan, traceIdOf, tracingOn } from '../tracing/spans.ts';

/**
 * One server span per HTTP request, under the client's W3C traceparent, and the trace id on the
 * request's log lines. While tracing is off, the log lines still carry the client's trace id.
 */
export function traceRequests(app: FastifyInstance): void {
  app.addHook('onRequest', async (request, reply) => {
    const route = request.routeOptions.url;
    const span = !tracingOn() ? undefined : startServerSpan(`${request.method} ${route ?? 'unmatched'}`, request.headers, {
      'http.request.method': request.method,
      'url.path': request.url.split('?', 1)[0],
      ...(route ? { 'http.route': route } : {}),
      'edge_embed.request_id': request.id,
    });
    const traceId = span ? span.spanContext().traceId : traceIdOf(request.headers.traceparent);
    if (!traceId) return;
    request.log = request.log.child({ trace_id: traceId });
    reply.log = request.log; // Fastify's own lines about the reply
    request.trace = { id: traceId, context: span && contextOf(span) };
    if (!span) return;
    let ended = false;
    const end = (closedEarly: boolean) => {
      if (ended) return;
      ended = true;
      const status = reply.statusCode;
      span.setAttribute('http.response.status_code', status);
      if (request.modelName) span.setAttribute('gen_ai.request.model', request.modelName);
      // A server span fails on a 5xx only; a 4xx was the client's doing.
      endSpan(span, closedEarly ? new Error('client closed the connection') : status >= 500 ? new Error(`HTTP ${status}`) : undefined);
    };
    reply.raw.once('finish', () => end(false));
    reply.raw.once('close', () => end(true)); // after 'finish', a no-op
  });
}
