import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { cohereEmbedByTypeResponseSchema, cohereEmbedV1RequestSchema, cohereEmbedV1ResponseSchema, cohereEmbedV2RequestSchema } from './schemas/cohere.ts';
import {
  infinityClassifyRequestSchema, infinityClassifyResponseSchema, teiPredictRequestSchema, teiPredictResponseSchema,
  vllmClassifyRequestSchema, vllmClassifyResponseSchema,
} from './schemas/classify.ts';
import { embeddingsRequestSchema, embeddingsResponseSchema } from './schemas/embeddings.ts';
import {
  detokenizeRequestSchema, llamaEmbeddingRequestSchema, llamaEmbeddingResponseSchema, llamaTokenizeRequestSchema, llamaTokenizeResponseSchema,
} from './schemas/llama.ts';
import { CLASSIFY_PATHS } from './routes/classify.ts';
import { adminPinSchema } from './schemas/admin.ts';
import { modelListSchema, modelObjectSchema } from './schemas/models.ts';
import { rerankRequestSchema, rerankResponseSchema } from './schemas/rerank.ts';
import { statsSchema } from './schemas/stats.ts';
import {
  decodeRequestSchema, teiEmbedAllRequestSchema, teiEmbedAllResponseSchema, teiEmbedRequestSchema, teiEmbedSparseRequestSchema,
  teiInfoSchema, teiRerankRequestSchema, teiRerankResponseSchema, teiSimilarityRequestSchema, teiSimilarityResponseSchema,
  teiTokenizeRequestSchema, teiTokenizeResponseSchema,
} from './schemas/tei.ts';

/** The OpenAI error envelope every 4xx/5xx answer uses. */
const errorSchema = z.object({
  error: z.object({ message: z.string(), type: z.string(), param: z.string().nullable(), code: z.string().nullable() }),
});

/** One documented route. */
export interface Operation {
  method: 'get' | 'post';
  path: string;
  summary: string;
  tag: string;
  request?: z.ZodType;
  response?: z.ZodType;
  /** Names of the path's `{parameters}`, each a string. */
  params?: string[];
}

const rerankPaths = ['/v1/rerank', '/v2/rerank', '/reranking', '/v1/reranking'];

/** Every public route, with the zod schemas its handler validates with. */
export const OPERATIONS: Operation[] = [
  { method: 'post', path: '/v1/embeddings', tag: 'OpenAI', summary: 'Embeddings (OpenAI), with extensions', request: embeddingsRequestSchema, response: embeddingsResponseSchema },
  { method: 'get', path: '/v1/models', tag: 'OpenAI', summary: 'Served models', response: modelListSchema },
  ...rerankPaths.map((path): Operation => ({ method: 'post', path, tag: 'Rerank', summary: 'Rerank (Cohere, Jina, llama.cpp)', request: rerankRequestSchema, response: rerankResponseSchema })),
  { method: 'post', path: '/rerank', tag: 'Rerank', summary: 'Rerank: the Cohere/llama.cpp shape, or TEI\'s when the body has `texts`', request: z.union([rerankRequestSchema, teiRerankRequestSchema]), response: z.union([rerankResponseSchema, teiRerankResponseSchema]) },
  { method: 'post', path: '/embedding', tag: 'llama.cpp', summary: 'Embeddings (llama.cpp)', request: llamaEmbeddingRequestSchema, response: llamaEmbeddingResponseSchema },
  { method: 'post', path: '/embeddings', tag: 'llama.cpp', summary: 'Embeddings: llama.cpp\'s list, or OpenAI\'s shape for a body with `input` and `model` or `encoding_format`', request: z.union([llamaEmbeddingRequestSchema, embeddingsRequestSchema]), response: z.union([llamaEmbeddingResponseSchema, embeddingsResponseSchema]) },
  { method: 'post', path: '/tokenize', tag: 'llama.cpp', summary: 'Tokenize: llama.cpp\'s shape (`content`) or TEI\'s (`inputs`)', request: z.union([llamaTokenizeRequestSchema, teiTokenizeRequestSchema]), response: z.union([llamaTokenizeResponseSchema, teiTokenizeResponseSchema]) },
  { method: 'post', path: '/detokenize', tag: 'llama.cpp', summary: 'Token ids to text', request: detokenizeRequestSchema },
  { method: 'post', path: '/decode', tag: 'TEI', summary: 'Token ids to text (TEI)', request: decodeRequestSchema },
  { method: 'post', path: '/embed', tag: 'TEI', summary: 'Embeddings (TEI)', request: teiEmbedRequestSchema, response: z.array(z.array(z.number())) },
  { method: 'post', path: '/embed_sparse', tag: 'TEI', summary: 'Sparse embeddings (TEI)', request: teiEmbedSparseRequestSchema, response: z.array(z.array(z.object({ index: z.number().int(), value: z.number() }))) },
  { method: 'post', path: '/embed_all', tag: 'TEI', summary: 'Every token\'s vector before pooling (TEI)', request: teiEmbedAllRequestSchema, response: teiEmbedAllResponseSchema },
  { method: 'post', path: '/similarity', tag: 'TEI', summary: 'Sentence similarity (TEI)', request: teiSimilarityRequestSchema, response: teiSimilarityResponseSchema },
  { method: 'post', path: '/', tag: 'TEI', summary: 'TEI\'s root route: similarity or rerank by the body, else embed, sparse embed or predict by the primary model\'s kind', request: z.union([teiEmbedRequestSchema, teiSimilarityRequestSchema, teiRerankRequestSchema]) },
  { method: 'get', path: '/info', tag: 'TEI', summary: 'Model information (TEI)', response: teiInfoSchema },
  { method: 'post', path: '/v1/embed', tag: 'Cohere', summary: 'Embed (Cohere v1), with int8, uint8, binary and ubinary types', request: cohereEmbedV1RequestSchema, response: cohereEmbedV1ResponseSchema },
  { method: 'post', path: '/v2/embed', tag: 'Cohere', summary: 'Embed (Cohere v2), with int8, uint8, binary and ubinary types', request: cohereEmbedV2RequestSchema, response: cohereEmbedByTypeResponseSchema },
  { method: 'post', path: '/predict', tag: 'Classify', summary: 'Sequence classification (TEI): texts or text pairs, every label best first', request: teiPredictRequestSchema, response: teiPredictResponseSchema },
  ...CLASSIFY_PATHS.map((path): Operation => ({
    method: 'post', path, tag: 'Classify', summary: 'Sequence classification: Infinity\'s shape when the body has `raw_scores`, else vLLM\'s',
    request: z.union([vllmClassifyRequestSchema, infinityClassifyRequestSchema]), response: z.union([vllmClassifyResponseSchema, infinityClassifyResponseSchema]),
  })),
  { method: 'get', path: '/health', tag: 'Operations', summary: '200 while every preloaded model is ready, else 503; every model\'s state' },
  { method: 'get', path: '/health/ready', tag: 'Operations', summary: 'Readiness probe: the same answer as /health' },
  { method: 'get', path: '/health/live', tag: 'Operations', summary: 'Liveness probe: 200 while the gateway answers' },
  { method: 'get', path: '/metrics', tag: 'Operations', summary: 'Prometheus metrics' },
  { method: 'get', path: '/stats', tag: 'Operations', summary: 'Live traffic series, one sample a second for the last 5 minutes, from the /metrics counters', response: statsSchema },
  { method: 'get', path: '/stats/stream', tag: 'Operations', summary: 'Each new traffic sample as a server-sent event `sample`, once a second' },
  { method: 'post', path: '/admin/reload', tag: 'Admin', summary: 'Re-read the model settings and the catalog, as SIGHUP does; answers what was added, removed and replaced' },
  ...(['load', 'unload', 'pin'] as const).map((action): Operation => ({
    method: 'post', path: `/admin/models/{model}/${action}`, tag: 'Admin', params: ['model'],
    summary: { load: 'Load a model now', unload: 'Stop a model\'s runners (409 while requests hold it)', pin: 'Pin (or with `{"pinned": false}` unpin) a model' }[action],
    request: action === 'pin' ? adminPinSchema : undefined, response: modelObjectSchema,
  })),
];

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

/** Builds the OpenAPI 3.1 document from the route schemas. */
export function openApiDocument(version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const error = { description: 'OpenAI error envelope', content: { 'application/json': { schema: json(errorSchema, 'output') } } };
  for (const op of OPERATIONS) {
    const responses: Record<string, unknown> = {
      200: { description: 'OK', content: { 'application/json': { schema: op.response ? json(op.response, 'output') : {} } } },
    };
    for (const status of op.method === 'post' ? [400, 401, 404, 413, 429, 503] : [401, 503]) responses[status] = error;
    paths[op.path] ??= {};
    paths[op.path]![op.method] = {
      summary: op.summary,
      tags: [op.tag],
      ...(op.params ? { parameters: op.params.map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } })) } : {}),
      ...(op.request ? { requestBody: { required: true, content: { 'application/json': { schema: json(op.request, 'input') } } } } : {}),
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
