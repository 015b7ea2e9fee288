import type { Operation } from '../operation.ts';
import { embeddingOperations } from './embeddings.ts';
import { modelOperations } from './models.ts';

/** The OpenAI dialect: embeddings and the model list. */
export const openAiOperations: Operation[] = [...embeddingOperations, ...modelOperations];
