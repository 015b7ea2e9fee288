import type { ClassifyCallOptions, ClassifyText, EmbedCallOptions, EmbedReply, InputErrorReply, RerankCallOptions } from '../runners/runner-client.ts';
import type { CallResult, CallSpec, RowFailure } from './batcher.ts';

// The runner client owns what a classify call takes; routes name it through this module, their layer's door.
export type { ClassifyText } from '../runners/runner-client.ts';

/** A sparse vector: token ids (ascending) and their weights. */
export interface SparseItem {
  indices: number[];
  values: number[];
}

/** Several vectors for one input, packed row-major as little-endian float32. */
export interface MultiVectorItem {
  data: Buffer;
  count: number;
  dimensions: number;
}

/** What embedding calls take: texts, or token ids of the model's own vocabulary. */
export type EmbedInput = string | number[];

/** Whether a call carries texts or token ids; calls never mix the two. */
export type InputKind = 'texts' | 'ids';

// Every field takes part in the key: calls are shared only by identical options.
const keyOf = (kind: string, options: object) => `${kind}\u0000${JSON.stringify(options)}`;

/** The runner's per-input errors, as rows of the call. */
const failures = (errors: InputErrorReply[]): RowFailure[] => errors.map((e) => ({ row: e.index, message: e.message, code: e.code }));

/** The per-call accounting every Embed reply carries. */
function counts(reply: EmbedReply): Omit<CallResult<unknown>, 'items'> {
  return { tokens: reply.token_counts, computeSeconds: reply.compute_seconds, failures: failures(reply.errors) };
}

/** Dense vectors: one little-endian float32 row per input. */
export function denseSpec(options: Omit<EmbedCallOptions, 'kind'>, inputKind: InputKind): CallSpec<Buffer, EmbedInput> {
  return {
    key: keyOf(`dense:${inputKind}`, options),
    async run(client, inputs, meta) {
      const reply = await client.embed(inputs as string[] | number[][], { ...options, kind: 'DENSE' }, meta);
      const width = reply.dimensions * 4;
      const items = inputs.map((_, i) => reply.vectors.subarray(i * width, (i + 1) * width));
      return { ...counts(reply), items };
    },
  };
}

/** Sparse lexical weights. */
export function sparseSpec(options: Omit<EmbedCallOptions, 'kind' | 'dimensions'>, inputKind: InputKind): CallSpec<SparseItem, EmbedInput> {
  return {
    key: keyOf(`sparse:${inputKind}`, options),
    async run(client, inputs, meta) {
      const reply = await client.embed(inputs as string[] | number[][], { ...options, kind: 'SPARSE' }, meta);
      return { ...counts(reply), items: reply.sparse.map((s) => ({ indices: s.indices, values: s.values })) };
    },
  };
}

/** Several vectors per input: ColBERT's (MULTI_VECTOR) or the encoder's own token states (TOKEN_EMBEDDINGS). */
export function multiVectorSpec(options: Omit<EmbedCallOptions, 'kind' | 'dimensions'>, inputKind: InputKind,
  kind: 'MULTI_VECTOR' | 'TOKEN_EMBEDDINGS' = 'MULTI_VECTOR'): CallSpec<MultiVectorItem, EmbedInput> {
  return {
    key: keyOf(`${kind}:${inputKind}`, options),
    async run(client, inputs, meta) {
      const reply = await client.embed(inputs as string[] | number[][], { ...options, kind }, meta);
      const rowBytes = reply.dimensions * 4;
      let offset = 0;
      const items = reply.vector_counts.map((count) => {
        const data = Buffer.from(reply.vectors.subarray(offset, offset + count * rowBytes));
        offset += count * rowBytes;
        return { data, count, dimensions: reply.dimensions };
      });
      return { ...counts(reply), items };
    },
  };
}

/** Relevance scores of documents against one query; documents are the batched inputs. */
export function rerankSpec(query: string, options: RerankCallOptions): CallSpec<number> {
  return {
    key: keyOf('rerank', { query, ...options }),
    async run(client, inputs, meta) {
      const reply = await client.rerank(query, inputs, options, meta);
      return { items: reply.scores, tokens: reply.token_counts, computeSeconds: reply.compute_seconds, failures: failures(reply.errors) };
    },
  };
}


/** Every label's score for one input; `labels` is the model's own order, shared by all items of a call. */
export interface ClassItem {
  labels: string[];
  scores: number[];
}

/** Scores of every label of a classifier, per text or pair. */
export function classifySpec(options: ClassifyCallOptions, labels: string[]): CallSpec<ClassItem, ClassifyText> {
  return {
    key: keyOf('classify', options),
    async run(client, inputs, meta) {
      const reply = await client.classify(inputs, options, meta);
      const width = labels.length;
      const items = inputs.map((_, i) => ({ labels, scores: reply.scores.slice(i * width, (i + 1) * width) }));
      return { items, tokens: reply.token_counts, computeSeconds: reply.compute_seconds, failures: failures(reply.errors) };
    },
  };
}

/** One token of the model's tokenisation, with its span in the text. */
export interface TokenItem {
  id: number;
  text: string;
  special: boolean;
  start: number;
  stop: number;
}

/** The model's tokenisation of each text. */
export function tokenizeSpec(addSpecialTokens: boolean): CallSpec<TokenItem[]> {
  return {
    key: keyOf('tokenize', { addSpecialTokens }),
    async run(client, inputs, meta) {
      const reply = await client.tokenize(inputs, addSpecialTokens, meta);
      const items = reply.texts.map((t) => t.tokens);
      return { items, tokens: items.map((t) => t.length), computeSeconds: 0, failures: failures(reply.errors) };
    },
  };
}

/** Text for each sequence of the model's token ids. */
export function detokenizeSpec(skipSpecialTokens: boolean): CallSpec<string, number[]> {
  return {
    key: keyOf('detokenize', { skipSpecialTokens }),
    async run(client, inputs, meta) {
      const reply = await client.detokenize(inputs, skipSpecialTokens, meta);
      return { items: reply.texts, tokens: inputs.map((ids) => ids.length), computeSeconds: 0, failures: failures(reply.errors) };
    },
  };
}
