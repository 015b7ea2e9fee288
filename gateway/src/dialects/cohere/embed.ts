import type { FastifyRequest } from 'fastify';
import { ApiError } from '../../errors.ts';
import type { EmbedChoices, ModelService } from '../../core/model-service.ts';
import { modelFor, serve } from '../../core/request-scope.ts';
import type { Operation } from '../operation.ts';
import { quantize } from '../shared/quantize.ts';
import { parseOrThrow } from '../shared/validate.ts';
import { float32Row } from '../shared/vectors.ts';
import {
  cohereEmbedByTypeResponseSchema, cohereEmbedV1RequestSchema, cohereEmbedV1ResponseSchema, cohereEmbedV2RequestSchema,
  type CohereEmbedByTypeResponse, type CohereEmbeddingsByType, type CohereEmbedV1Response, type cohereEmbeddingTypes, type cohereInputTypes,
} from './embed-schemas.ts';

type InputType = (typeof cohereInputTypes)[number];
type EmbeddingType = (typeof cohereEmbeddingTypes)[number];

/** Cohere's truncate → the service's truncation choices. */
const TRUNCATE = {
  NONE: { truncate: false },
  START: { truncate: true, truncateLeft: true },
  END: { truncate: true, truncateLeft: false },
} as const satisfies Record<string, Pick<EmbedChoices, 'truncate' | 'truncateLeft'>>;

/**
 * Cohere's input_type → the model's prompt. A model with a prompt of the same name, in any case
 * (nomic's search_query, embedding-gemma's Classification), gets that prompt; otherwise a query
 * is a query and everything else a document, whose prompts the catalog's default_prompts name.
 */
function promptFor(model: ModelService, inputType: InputType): Pick<EmbedChoices, 'kind' | 'promptName'> {
  const own = model.info?.promptNames.find((name) => name.toLowerCase() === inputType);
  if (own !== undefined) return { promptName: own };
  return { kind: inputType === 'search_query' ? 'query' : 'document' };
}

/** Each requested type's vectors, keyed as Cohere keys them; a type named twice appears once. */
function byType(rows: Buffer[], types: EmbeddingType[]): CohereEmbeddingsByType {
  const out: CohereEmbeddingsByType = {};
  let floats: number[][] | undefined;
  for (const type of new Set(types)) {
    if (type === 'base64') {
      // Cohere's base64 is the float32 bytes; the runner's are sent as they are.
      out.base64 = rows.map((row) => row.toString('base64'));
      continue;
    }
    floats ??= rows.map(float32Row);
    out[type] = type === 'float' ? floats : floats.map((vector) => quantize(vector, type));
  }
  return out;
}

/**
 * Runs `work` and reports a size error in Cohere's field name: the service calls it `dimensions`
 * (the texts are named through the call's context).
 */
async function inCohereTerms<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (!(err instanceof ApiError) || err.param !== 'dimensions') throw err;
    throw new ApiError(err.kind, err.message, { param: 'output_dimension', code: err.code, cause: err });
  }
}

/** What both versions compute: dense float rows for the texts, and the tokens they cost. */
async function embed(request: FastifyRequest, texts: string[],
  body: { model?: string; input_type: InputType; truncate: keyof typeof TRUNCATE; output_dimension?: number; max_tokens?: number },
  textsParam: 'texts' | 'inputs'): Promise<{ rows: Buffer[]; tokens: number; model: string }> {
  const model = modelFor(request, body.model, 'text-embedding');
  const limit = model.info?.maxTokens;
  if (body.max_tokens !== undefined && limit !== undefined && body.max_tokens < limit) {
    // The runner cuts inputs only at the model's own limit; a smaller cap would be silently ignored.
    throw new ApiError('validation', `max_tokens below the model's limit is not supported: leave it out, or send ${limit} or more for '${model.name}'.`,
      { param: 'max_tokens', code: 'unsupported_max_tokens' });
  }
  const choices: EmbedChoices = { ...promptFor(model, body.input_type), ...TRUNCATE[body.truncate], dimensions: body.output_dimension };
  const inputs = { param: textsParam, name: (i: number) => `${textsParam}[${i}]` };
  const out = await inCohereTerms(() => serve(request, model, 'embedding_request', { inputs: texts.length, input_type: body.input_type },
    (ctx) => model.embedDense(texts, choices, ctx), inputs));
  return { rows: out.items, tokens: out.tokens, model: out.model };
}

/** Cohere's `meta` for an answer. */
const meta = (version: '1' | '2', tokens: number) => ({ api_version: { version }, billed_units: { input_tokens: tokens } });

/** POST /v1/embed: v1 answers a bare float list unless the client named types, as Cohere does. */
async function embedV1(request: FastifyRequest): Promise<CohereEmbedV1Response> {
  const body = parseOrThrow(cohereEmbedV1RequestSchema, request.body);
  const { rows, tokens } = await embed(request, body.texts, body, 'texts');
  const common = { id: request.id, texts: body.texts, meta: meta('1', tokens) };
  if (body.embedding_types === undefined) return { ...common, response_type: 'embeddings_floats', embeddings: rows.map(float32Row) };
  return { ...common, response_type: 'embeddings_by_type', embeddings: byType(rows, body.embedding_types) };
}

/** POST /v2/embed. */
async function embedV2(request: FastifyRequest): Promise<CohereEmbedByTypeResponse> {
  const body = parseOrThrow(cohereEmbedV2RequestSchema, request.body);
  // Text parts of one input are one text; a newline keeps them from running into each other.
  const texts = body.texts ?? body.inputs!.map((input) => input.content.join('\n'));
  const { rows, tokens } = await embed(request, texts, body, body.texts ? 'texts' : 'inputs');
  return { id: request.id, response_type: 'embeddings_by_type', embeddings: byType(rows, body.embedding_types), texts, meta: meta('2', tokens) };
}

/** Cohere's embed API, for the cohere SDKs' Client and ClientV2. */
export const cohereEmbedOperations: Operation[] = [
  { method: 'post', path: '/v1/embed', tag: 'Cohere', summary: 'Embed (Cohere v1), with int8, uint8, binary and ubinary types',
    request: cohereEmbedV1RequestSchema, response: cohereEmbedV1ResponseSchema, handle: embedV1 },
  { method: 'post', path: '/v2/embed', tag: 'Cohere', summary: 'Embed (Cohere v2), with int8, uint8, binary and ubinary types',
    request: cohereEmbedV2RequestSchema, response: cohereEmbedByTypeResponseSchema, handle: embedV2 },
];
