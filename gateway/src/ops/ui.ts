import { readFileSync } from 'node:fs';
import { createRequire, stripTypeScriptTypes } from 'node:module';
import type { FastifyInstance, FastifyReply } from 'fastify';

const UI = new URL('../../ui/', import.meta.url);
const vendor = (file: string) => createRequire(import.meta.url).resolve(`uplot/dist/${file}`);

/**
 * No inline script or style, nothing from another origin, and no framing: the page's data calls
 * carry the API key, so nothing else may run beside them.
 */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** gateway/ui/app.ts as the browser runs it: the types stripped, once, at start. */
function pageScript(): string {
  const source = readFileSync(new URL('app.ts', UI), 'utf8');
  // stripTypeScriptTypes announces itself with an ExperimentalWarning on stderr, which would be
  // the one line there that is not JSON.
  const emitWarning = process.emitWarning;
  process.emitWarning = () => {};
  try {
    return stripTypeScriptTypes(source);
  } finally {
    process.emitWarning = emitWarning;
  }
}

/**
 * The dashboard: GET / and /ui, with its script, style sheet and uPlot served from this process,
 * so it works offline. It is an operations route, open under PUBLIC_OPS_ROUTES like /metrics;
 * the data it shows comes from /v1/models, /health and /stats, which take the key as usual.
 */
export default async function uiRoutes(app: FastifyInstance): Promise<void> {
  const files: Record<string, { type: string; body: string | Buffer }> = {
    'app.js': { type: 'text/javascript; charset=utf-8', body: pageScript() },
    'app.css': { type: 'text/css; charset=utf-8', body: readFileSync(new URL('app.css', UI)) },
    'vendor/uPlot.iife.min.js': { type: 'text/javascript; charset=utf-8', body: readFileSync(vendor('uPlot.iife.min.js')) },
    'vendor/uPlot.min.css': { type: 'text/css; charset=utf-8', body: readFileSync(vendor('uPlot.min.css')) },
  };
  const page = readFileSync(new URL('index.html', UI));
  const send = (reply: FastifyReply, type: string, body: string | Buffer) => reply
    .header('content-type', type)
    .header('content-security-policy', CSP)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('cache-control', 'no-cache')
    .send(body);

  for (const path of ['/', '/ui', '/ui/']) app.get(path, (_request, reply) => send(reply, 'text/html; charset=utf-8', page));
  for (const [name, file] of Object.entries(files)) app.get(`/ui/${name}`, (_request, reply) => send(reply, file.type, file.body));
}
