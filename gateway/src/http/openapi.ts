import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Operation } from '../dialects/operation.ts';
import { SHARED_PATHS } from '../dialects/shared-paths.ts';
import { routes } from './route-table.ts';

/** The OpenAI error envelope every 4xx/5xx answer uses. */
const errorSchema = z.object({
  error: z.object({ message: z.string(), type: z.string(), param: z.string().nullable(), code: z.string().nullable() }),
});

const json = (schema: z.ZodType, io: 'input' | 'output') => {
  const document = z.toJSONSchema(schema, { io, target: 'draft-2020-12', unrepresentable: 'any' }) as Record<string, unknown>;
  return io === 'input' ? nullableOptionals(document) : document;
};

/**
 * Marks every optional property of every object in a request schema as nullable, since
 * parseOrThrow reads null as absent; generated clients and fuzzers then know they may send it.
 */
function nullableOptionals(node: unknown): Record<string, unknown> {
  if (Array.isArray(node)) return node.map(nullableOptionals) as never;
  if (node === null || typeof node !== 'object') return node as never;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) out[key] = nullableOptionals(value);
  const properties = out.properties as Record<string, Record<string, unknown>> | undefined;
  if (properties && typeof properties === 'object') {
    const required = new Set((out.required as string[] | undefined) ?? []);
    for (const [name, property] of Object.entries(properties)) {
      if (!required.has(name)) properties[name] = { anyOf: [property, { type: 'null' }] };
    }
  }
  return out;
}

/** Builds the OpenAPI 3.1 document from the same operations the app serves. */
export function openApiDocument(version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const error = { description: 'OpenAI error envelope', content: { 'application/json': { schema: json(errorSchema, 'output') } } };
  for (const { method, path, operations: ops } of routes()) {
    const [op] = ops as [Operation, ...Operation[]];
    // A shared path is one operation with each dialect's schema as an alternative, and its rule as the summary.
    const either = (schemas: (z.ZodType | undefined)[]) => {
      const given = schemas.filter((s): s is z.ZodType => s !== undefined);
      return given.length > 1 ? z.union(given) : given[0];
    };
    const request = either(ops.map((o) => o.request));
    const response = either(ops.map((o) => o.response));
    const responses: Record<string, unknown> = {
      200: { description: 'OK', content: { 'application/json': { schema: response ? json(response, 'output') : {} } } },
    };
    for (const status of method === 'post' ? [400, 401, 404, 413, 429, 503] : [401, 503]) responses[status] = error;
    paths[path] ??= {};
    paths[path]![method] = {
      summary: ops.length > 1 ? `${ops.map((o) => o.summary).join('; ')}. ${SHARED_PATHS[path]!.rule}` : op.summary,
      tags: [...new Set(ops.map((o) => o.tag))],
      ...(op.params ? { parameters: op.params.map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } })) } : {}),
      ...(request ? { requestBody: { required: true, content: { 'application/json': { schema: json(request, 'input') } } } } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: { title: 'edge-embed', version, description: 'OpenAI-compatible embedding and reranking server, with llama.cpp, TEI and Cohere-style routes.' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    security: [{ bearer: [] }, {}],
    paths,
  };
}

/** GET /openapi.json and Swagger UI at /docs. */
export default async function openApiRoutes(app: FastifyInstance): Promise<void> {
  const document = openApiDocument('0.1.0');
  await app.register(swagger, { mode: 'static', specification: { document: document as never } });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', async () => document);
}
