import type { FastifyInstance } from 'fastify';
import { DIALECT_OPERATIONS } from '../dialects/index.ts';
import type { Operation } from '../dialects/operation.ts';
import { SHARED_PATHS } from '../dialects/shared-paths.ts';
import { OPS_OPERATIONS } from '../ops/index.ts';

/** Every documented route, in the order the OpenAPI document lists them. */
export const OPERATIONS: Operation[] = [...DIALECT_OPERATIONS, ...OPS_OPERATIONS];

/** Operations that answer on one method and path: one, or several that SHARED_PATHS tells apart. */
export interface Route {
  method: Operation['method'];
  path: string;
  operations: Operation[];
}

/**
 * OPERATIONS grouped by method and path. A path that several dialects serve must have its rule
 * in SHARED_PATHS, and each dialect its rule names must serve it; anything else is a mistake
 * caught when the app is built.
 */
export function routes(operations: Operation[] = OPERATIONS): Route[] {
  const byKey = new Map<string, Route>();
  for (const op of operations) {
    const key = `${op.method} ${op.path}`;
    const route = byKey.get(key) ?? { method: op.method, path: op.path, operations: [] };
    route.operations.push(op);
    byKey.set(key, route);
  }
  for (const { method, path, operations: ops } of byKey.values()) {
    const tags = ops.map((op) => op.tag);
    const where = `${method.toUpperCase()} ${path}`;
    if (new Set(tags).size !== tags.length) throw new Error(`${where} is registered twice by ${tags.join(', ')}`);
    if (ops.length > 1 && !SHARED_PATHS[path]) throw new Error(`${where} is served by ${tags.join(' and ')} with no rule in SHARED_PATHS`);
  }
  return [...byKey.values()];
}

/** The body as the shared-path rules read it: an object, or {} for anything else, whose parser then refuses it. */
const asObject = (body: unknown) => (body !== null && typeof body === 'object' && !Array.isArray(body) ? body : {}) as Record<string, unknown>;

/** Serves every enabled operation; on a shared path, the dialect SHARED_PATHS picks for the body answers. */
export function registerRoutes(app: FastifyInstance): void {
  for (const route of routes()) {
    const ops = route.operations.filter((op) => op.enabled?.(app.settings) ?? true);
    if (ops.length === 0) continue;
    const url = route.path.replace(/\{(\w+)\}/g, ':$1');
    const shared = ops.length > 1 ? SHARED_PATHS[route.path]! : undefined;
    app.route({
      method: route.method.toUpperCase() as 'GET' | 'POST',
      url,
      handler: shared
        ? (request, reply) => {
          const tag = shared.pick(asObject(request.body));
          return ops.find((op) => op.tag === tag)!.handle(request, reply);
        }
        : ops[0]!.handle,
    });
  }
}
