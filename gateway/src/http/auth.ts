import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../errors.ts';

/** Operational routes: open without a key unless PUBLIC_OPS_ROUTES is off. */
const OPS_PREFIXES = ['/health', '/metrics', '/docs', '/openapi.json'];

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * Requires `Authorization: Bearer <key>` with one of the configured keys. Keys are compared as
 * SHA-256 digests with timingSafeEqual, and every key is checked, so neither the comparison nor
 * the number of keys tried leaks through timing.
 */
export function requireApiKey(app: FastifyInstance, keys: string[], publicOps: boolean): void {
  const expected = keys.map(digest);
  app.addHook('onRequest', async (request) => {
    const path = request.url.split('?')[0]!;
    if (publicOps && OPS_PREFIXES.some((p) => path === p || path.startsWith(`${p}/`))) return;
    if (request.method === 'OPTIONS') return; // CORS preflight carries no credentials
    const header = request.headers.authorization ?? '';
    const given = digest(header.startsWith('Bearer ') ? header.slice(7).trim() : '');
    let ok = false;
    for (const key of expected) ok = timingSafeEqual(given, key) || ok;
    if (!ok) {
      throw new ApiError('auth', header ? 'Invalid API key.' : 'Missing API key: send Authorization: Bearer <key>.', { code: 'invalid_api_key' });
    }
  });
}
