import pino, { type Logger } from 'pino';
import { catalogEntrySchema } from '../../gateway/src/config/catalog.ts';
import { loadSettings } from '../../gateway/src/config/settings.ts';
import { buildApp } from '../../gateway/src/http/app.ts';
import { createMetrics } from '../../gateway/src/metrics/metrics.ts';
import { ModelRegistry } from '../../gateway/src/core/model-registry.ts';

/** Runners are never started here, so their sockets are never made. */
const UNUSED_SOCKETS = { socket: (i: number) => `/nonexistent/r${i}.sock` };

/**
 * The real HTTP app over models whose runners are never started: it covers the HTTP layer's
 * own answers (parsing, auth, limits, 503 while not ready). The end-to-end suites cover the rest.
 */
export function testApp(env: Record<string, string> = {}, logger: Logger = pino({ level: 'silent' })) {
  const settings = loadSettings({ argv: [], env: { MODELS: 'm1,m2', ...env } });
  const metrics = createMetrics();
  const entries = settings.MODELS.map((name) => catalogEntrySchema.parse({ name, hf_repo_id: 'x/y', handler: 'a.B' }));
  return buildApp({ settings, registry: new ModelRegistry(entries, settings, UNUSED_SOCKETS, metrics, logger), metrics, logger });
}
