import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../errors.ts';

/** Operational routes: open without a key unless PUBLIC_OPS_ROUTES is off; GET / (the dashboard) too. */
const OPS_PREFIXES = ['/health', '/metrics', '/docs', '/openapi.json', '/ui'];

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Routes that change what the server runs; ADMIN_API_KEY, when set, is their key instead of API_KEY. */
const ADMIN_PREFIX = '/admin/';

/**
 * Requires `Authorization: Bearer <key>` with one of the configured keys: API_KEY's, or on the
 * admin routes ADMIN_API_KEY's when it is set. Keys are compared as SHA-256 digests with
 * timingSafeEqual, and every key is checked, so neither the comparison nor the number of keys
 * tried leaks through timing. A route whose key list is empty is open.
 */
export function requireApiKey(app: FastifyInstance, keys: string[], adminKeys: string[], publicOps: boolean): void {
  const userKeys = keys.map(digest);
  const admin = adminKeys.length ? adminKeys.map(digest) : userKeys;
  app.addHook('onRequest', async (request) => {
    const path = request.url.split('?')[0]!;
    const page = path === '/' && (request.method === 'GET' || request.method === 'HEAD'); // POST / is TEI's
    if (publicOps && (page || OPS_PREFIXES.some((p) => path === p || path.startsWith(`${p}/`)))) return;
    if (request.method === 'OPTIONS') return; // CORS preflight carries no credentials
    const expected = path.startsWith(ADMIN_PREFIX) ? admin : userKeys;
    if (expected.length === 0) return;
    const header = request.headers.authorization ?? '';
    const given = digest(header.startsWith('Bearer ') ? header.slice(7).trim() : '');
    let ok = false;
    for (const key of expected) ok = timingSafeEqual(given, key) || ok;
    if (!ok) {
      throw new ApiError('auth', header ? 'Invalid API key.' : 'Missing API key: send Authorization: Bearer <key>.', { code: 'invalid_api_key' });
    }
  });
}
