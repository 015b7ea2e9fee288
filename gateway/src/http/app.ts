import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Settings } from '../config/settings.ts';
import { ApiError } from '../errors.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { ModelRegistry, ReloadResult } from '../core/model-registry.ts';
import { TrafficStats } from '../core/traffic-stats.ts';
import cors from '@fastify/cors';
import { endStatsStreams } from '../ops/stats.ts';
import uiRoutes from '../ops/ui.ts';
import { requireApiKey } from './auth.ts';
import { registerBodyParsing } from './body.ts';
import { isServerFault, toHttpError } from './error-envelope.ts';
import openApiRoutes from './openapi.ts';
import { RejectionLog } from './rejection-log.ts';
import { registerRoutes } from './route-table.ts';
import { traceRequests } from './tracing-hooks.ts';

/** A client-supplied X-Request-Id is kept only if it is short and plain. */
const REQUEST_ID = /^[\w.:@-]{1,128}$/;

/** What the HTTP layer needs from the rest of the gateway. */
export interface AppDeps {
  settings: Settings;
  registry: ModelRegistry;
  metrics: Metrics;
  logger: Logger;
  /** Re-reads the model settings and the catalog and applies them (POST /admin/reload); absent in tests without one. */
  reload?: () => Promise<ReloadResult>;
}

/**
 * Builds the Fastify app: routes, request ids, error envelope and per-request metrics, and the
 * connection limits that keep slow or idle clients from holding sockets open for ever.
 */
export function buildApp({ settings, registry, metrics, logger, reload }: AppDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    bodyLimit: settings.MAX_REQUEST_BYTES,
    // Node answers 408 and closes a connection whose headers, or whole request, are late;
    // it checks every second, so a slow-loris client is gone within a second of its limit.
    requestTimeout: settings.HTTP_REQUEST_TIMEOUT_MS,
    keepAliveTimeout: settings.HTTP_KEEP_ALIVE_TIMEOUT_MS,
    http: {
      headersTimeout: Math.min(settings.HTTP_HEADERS_TIMEOUT_MS, settings.HTTP_REQUEST_TIMEOUT_MS),
      connectionsCheckingInterval: 1_000,
    },
    // One embedding_request line per request replaces Fastify's two generic ones.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'request_id' }),
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    return503OnClosing: true,
  });
  app.server.maxConnections = settings.MAX_CONNECTIONS;
  app.decorate('registry', registry);
  app.decorate('reload', reload);
  app.decorate('metrics', metrics);
  app.decorate('settings', settings);
  const stats = new TrafficStats(metrics, (err) => logger.warn({ err }, 'stats_sample_failed'));
  app.decorate('stats', stats);
  app.addHook('onReady', async () => stats.start());
  app.addHook('onClose', async () => stats.stop());
  app.decorateRequest('modelName', '');
  app.decorateRequest('abortSignal', null as unknown as AbortSignal);
  app.decorateRequest('trace', undefined);
  app.decorateRequest('served', undefined);
  traceRequests(app);

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    const controller = new AbortController();
    request.abortSignal = controller.signal;
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) controller.abort();
    });
  });
  // While closing, answers tell keep-alive clients to hang up, so that connections whose
  // request was in flight at SIGTERM end with it instead of holding the drain open.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
    endStatsStreams(app);
  });
  app.addHook('onSend', async (_request, reply) => {
    if (closing) reply.header('connection', 'close');
  });
  app.addHook('onResponse', async (request, reply) => {
    // The one line of a served request (see core/request-scope.ts), with the time its answer took.
    const served = request.served;
    if (served) request.log.info({ ...served.fields, total_ms: Math.round(reply.elapsedTime * 1000) / 1000, status: reply.statusCode }, served.event);
    const route = request.routeOptions.url ?? 'unmatched';
    const labels = { route, model: request.modelName };
    metrics.requests.inc({ ...labels, status: String(reply.statusCode) });
    metrics.requestSeconds.observe(labels, reply.elapsedTime / 1000);
  });

  const rejections = new RejectionLog(logger as FastifyBaseLogger, metrics, settings.REJECTED_LOG_LINES_PER_MINUTE);
  app.addHook('onClose', async () => rejections.close());
  app.setErrorHandler((err, request, reply) => {
    const { status, headers, body } = toHttpError(err);
    const fields = { route: request.routeOptions.url ?? 'unmatched', model: request.modelName || undefined, error: body.error.message };
    if (isServerFault(status)) request.log.error({ err, ...fields }, 'request_failed');
    else rejections.record(request.log, status, body.error.code, fields);
    return reply.code(status).headers(headers).send(body);
  });
  app.setNotFoundHandler((request) => {
    throw new ApiError('not_found', `No route ${request.method} ${request.url}.`, { code: 'route_not_found' });
  });

  registerBodyParsing(app);
  if (settings.CORS_ORIGINS.length > 0) {
    app.register(cors, { origin: settings.CORS_ORIGINS.includes('*') ? true : settings.CORS_ORIGINS });
  }
  if (settings.API_KEY.length > 0 || settings.ADMIN_API_KEY.length > 0) {
    requireApiKey(app, settings.API_KEY, settings.ADMIN_API_KEY, settings.PUBLIC_OPS_ROUTES);
  }

  app.register(openApiRoutes);
  // In a plugin of its own, so that the routes come after the CORS and key checks above.
  app.register(async (scope) => registerRoutes(scope));
  app.register(uiRoutes);
  return app;
}
