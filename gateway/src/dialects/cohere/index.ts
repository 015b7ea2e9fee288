import type { Operation } from '../operation.ts';
import { cohereEmbedOperations } from './embed.ts';
import { cohereRerankOperations } from './rerank.ts';

/** The Cohere dialect: embed, and the rerank shape that Jina's and llama.cpp's clients share. */
export const cohereOperations: Operation[] = [...cohereEmbedOperations, ...cohereRerankOperations];
