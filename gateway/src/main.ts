import { tmpdir } from 'node:os';
import { CatalogError, loadCatalog, type CatalogEntry } from './config/catalog.ts';
import { servedModels, ServedModelsError } from './config/served-models.ts';
import { loadSettings, readDotenv, SettingsError, settingsHelp, type Settings } from './config/settings.ts';
import { buildApp } from './http/app.ts';
import { createLogger } from './logger.ts';
import { createMetrics } from './metrics/metrics.ts';
import { SocketDir } from './runners/socket-dir.ts';
import { RunnerStartError } from './runners/supervisor.ts';
import { ModelRegistry } from './core/model-registry.ts';
import { startTracing } from './tracing/setup.ts';

const USAGE = `Usage: node gateway/src/main.ts --models NAME[,NAME...] [options]

Every setting is a flag or an environment variable (flags win, then the environment, then .env):
${settingsHelp()}
`;

/** Fails with a message a person can act on, and no stack trace. */
function die(message: string): never {
  process.stderr.write(`edge-embed: ${message}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return;
  }
  let settings: Settings;
  let catalogNames: string[] = [];
  try {
    settings = loadSettings({ argv, env: process.env, dotenv: readDotenv() });
  } catch (err) {
    if (!(err instanceof SettingsError)) throw err;
    // A missing MODELS is the most common first-run mistake: say what could be served.
    try {
      const path = process.env.MODEL_CONFIG ?? 'configs/model_config.yaml';
      catalogNames = [...loadCatalog(path).keys()];
    } catch { /* the settings error below is the one to show */ }
    const hint = catalogNames.length ? `\nModels in the catalog: ${catalogNames.join(', ')}` : '';
    die(`${err.message}${hint}`);
  }
  let entries: CatalogEntry[];
  try {
    entries = servedModels(settings);
  } catch (err) {
    if (err instanceof CatalogError || err instanceof ServedModelsError) die(err.message);
    throw err;
  }

  const logger = createLogger(settings.LOG_LEVEL);
  // Keys are secrets: the log says only how many there are.
  logger.info({ config: { ...settings, API_KEY: `${settings.API_KEY.length} key(s)`, ADMIN_API_KEY: `${settings.ADMIN_API_KEY.length} key(s)` } },
    'runtime_config');
  // Before any request, so that the first one is traced too; a no-op without OTEL_* settings.
  const stopTracing = await startTracing(process.env, logger);
  const socketParent = settings.SOCKET_DIR || tmpdir();
  let sockets: SocketDir;
  try {
    sockets = new SocketDir(socketParent);
  } catch (err) {
    die(`cannot make a private socket folder in ${socketParent} (SOCKET_DIR): ${(err as Error).message}`);
  }
  // Every way out but SIGKILL passes here; the next start sweeps up after a SIGKILL.
  process.on('exit', () => sockets.remove());
  const metrics = createMetrics();
  const registry = new ModelRegistry(entries, settings, sockets, metrics, logger);
  // SIGHUP and POST /admin/reload: the model settings and the catalog, read again.
  const reload = async () => {
    const next = loadSettings({ argv, env: process.env, dotenv: readDotenv() });
    const result = await registry.reload(servedModels(next), next);
    logger.info(result, 'reloaded');
    return result;
  };
  const app = buildApp({ settings, registry, metrics, logger, reload });

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutdown_started');
    const force = setTimeout(() => {
      logger.warn('shutdown_timeout_stopping_runners');
      void registry.stop().finally(() => process.exit(1));
    }, settings.SHUTDOWN_TIMEOUT_S * 1000);
    // close() stops accepting, answers new requests 503, and waits for in-flight ones.
    await app.close().catch((err) => logger.error({ err }, 'http_close_failed'));
    await registry.stop();
    await stopTracing?.(); // sends the spans still buffered
    clearTimeout(force);
    logger.info('shutdown_complete');
    process.exit(0);
  };
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => void shutdown(signal));
  process.on('SIGHUP', () => {
    // A bad edit is reported and changes nothing: the server keeps serving what it had.
    reload().catch((err) => logger.error({ err: (err as Error).message }, 'reload_failed'));
  });

  // Listen first: a taken port fails in milliseconds rather than after the models load, and
  // /health can answer 503 while the runners warm up.
  try {
    await app.listen({ host: settings.HOST, port: settings.PORT });
  } catch (err) {
    die(`cannot listen on ${settings.HOST}:${settings.PORT}: ${(err as Error).message}`);
  }
  const started = performance.now();
  try {
    await registry.start();
  } catch (err) {
    if (stopping) return; // a signal during startup stopped the runners on purpose
    const message = err instanceof RunnerStartError ? err.message : `start-up failed: ${(err as Error).message}`;
    logger.fatal({ err: message }, 'runner_start_failed');
    await app.close();
    die(message);
  }
  logger.info({ seconds: Math.round(performance.now() - started) / 1000 }, 'ready');
}

try {
  await main();
} catch (err) {
  die(`start-up failed: ${(err as Error).message}`);
}
