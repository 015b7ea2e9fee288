import { cohereOperations } from './cohere/index.ts';
import { infinityOperations } from './infinity/routes.ts';
import { llamaOperations } from './llamacpp/routes.ts';
import type { Operation } from './operation.ts';
import { openAiOperations } from './openai/index.ts';
import { teiOperations } from './tei/routes.ts';
import { vllmOperations } from './vllm/routes.ts';

/** Every dialect's operations; each dialect module owns its schemas, routes and answers, and none imports another. */
export const DIALECT_OPERATIONS: Operation[] = [
  ...openAiOperations, ...llamaOperations, ...teiOperations, ...cohereOperations, ...infinityOperations, ...vllmOperations,
];
