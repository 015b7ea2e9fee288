import type { FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { Settings } from '../config/settings.ts';

/** Whose wire shape an operation speaks; also its tag in the OpenAPI document. */
export type Tag = 'OpenAI' | 'llama.cpp' | 'TEI' | 'Cohere' | 'Infinity' | 'vLLM' | 'Operations' | 'Admin';

/**
 * One route of one dialect: how it is served and how it is documented, in one registration.
 * http/route-table.ts serves every operation and http/openapi.ts documents the same list, so
 * neither keeps its own copy of the paths.
 */
export interface Operation {
  method: 'get' | 'post';
  path: string;
  tag: Tag;
  summary: string;
  /** The schema the handler parses the body with, which is also its type. */
  request?: z.ZodType;
  /** The schema of a 200 answer. */
  response?: z.ZodType;
  /** Names of the path's `{parameters}`, each a string. */
  params?: string[];
  /** Served only where this says so; documented always. */
  enabled?: (settings: Settings) => boolean;
  /** Answers the request; its parsed body comes from `request.body` through `request`'s schema. */
  handle: (request: FastifyRequest, reply: FastifyReply) => unknown;
}
