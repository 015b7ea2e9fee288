import * as grpc from '@grpc/grpc-js';
import type { Context } from '@opentelemetry/api';
import type { ClassifyRequest } from '../generated/edgeembed/runner/v1/ClassifyRequest.ts';
import type { ClassifyResponse__Output } from '../generated/edgeembed/runner/v1/ClassifyResponse.ts';
import type { DetokenizeResponse__Output } from '../generated/edgeembed/runner/v1/DetokenizeResponse.ts';
import type { EmbedRequest } from '../generated/edgeembed/runner/v1/EmbedRequest.ts';
import type { EmbedResponse__Output } from '../generated/edgeembed/runner/v1/EmbedResponse.ts';
import type { InfoResponse__Output } from '../generated/edgeembed/runner/v1/InfoResponse.ts';
import type { InputError__Output } from '../generated/edgeembed/runner/v1/InputError.ts';
import type { RerankRequest } from '../generated/edgeembed/runner/v1/RerankRequest.ts';
import type { RerankResponse__Output } from '../generated/edgeembed/runner/v1/RerankResponse.ts';
import type { RunnerClient as GeneratedRunnerClient } from '../generated/edgeembed/runner/v1/Runner.ts';
import type { TokenizeResponse__Output } from '../generated/edgeembed/runner/v1/TokenizeResponse.ts';
import type { HealthClient } from '../generated/grpc/health/v1/Health.ts';
import type { Call } from '../generated/edgeembed/runner/v1/Call.ts';
import type { CallResult__Output } from '../generated/edgeembed/runner/v1/CallResult.ts';
import { clientSpan } from '../tracing/spans.ts';
import { CallStream, type CallFields, type CallKind } from './call-stream.ts';
import { fromGrpcError } from './grpc-errors.ts';
import { HealthClientCtor, RunnerClientCtor } from './proto.ts';

/** What the gateway learns about a runner's model once it is up. */
export type RunnerInfo = InfoResponse__Output;
/** One Embed answer: packed little-endian float32 rows (or sparse vectors) plus token counts. */
export type EmbedReply = EmbedResponse__Output;
/** One Rerank answer: a score and a token count per document. */
export type RerankReply = RerankResponse__Output;
/** One Classify answer: one score per label (in Info's label order) per input, row-major. */
export type ClassifyReply = ClassifyResponse__Output;
/** One tokenised text per input, with ids, texts and spans. */
export type TokenizeReply = TokenizeResponse__Output;
/** One text per sequence of ids. */
export type DetokenizeReply = DetokenizeResponse__Output;
/** An input the runner could not process, by its position in the call. */
export type InputErrorReply = InputError__Output;
/** Embed's options, as the proto names them. */
export type EmbedCallOptions = Omit<EmbedRequest, 'texts' | 'token_ids'>;
/** Rerank's options, as the proto names them. */
export type RerankCallOptions = Omit<RerankRequest, 'query' | 'documents'>;
/** Classify's options, as the proto names them. */
export type ClassifyCallOptions = Omit<ClassifyRequest, 'inputs'>;

/** What classify calls take: a text, or a pair of texts the model reads together (premise, hypothesis). */
export type ClassifyText = string | [string, string];

/** What travels with a computing call besides its inputs, in its Call message. */
export interface CallMeta {
  /** Request ids of the batch, so that runner logs can name them. */
  requestIds: string[];
  /** Trace ids of the batch's requests, for the runner's log lines (sent whether or not tracing is on). */
  traceIds?: string[];
  /** CPU threads the call's forward passes may use (see cpu-share.ts); 0: the runner's own count. */
  threads: number;
  /** The batch span the call belongs to; its traceparent goes to the runner. Undefined while tracing is off. */
  trace?: Context;
}

const MAX_MESSAGE = 256 * 1024 * 1024;

/**
 * Typed, promise-based calls to one runner over its unix socket. Every call carries the
 * runner's secret, which it refuses calls without.
 */
export class RunnerClient {
  readonly #model: string;
  readonly #runner: GeneratedRunnerClient;
  readonly #health: HealthClient;
  readonly #callTimeoutMs: number;
  readonly #secret: string;
  readonly #calls: CallStream;

  /**
   * callTimeoutMs bounds every call, so a runner stuck in a forward pass cannot hang requests;
   * onTimeout hears of each call that ran past it (the supervisor then probes the runner).
   */
  constructor(model: string, address: string, secret: string, callTimeoutMs: number, onTimeout?: () => void) {
    this.#model = model;
    this.#secret = secret;
    this.#callTimeoutMs = callTimeoutMs;
    const options = {
      'grpc.max_receive_message_length': MAX_MESSAGE,
      'grpc.max_send_message_length': MAX_MESSAGE,
      // The socket appears only once the runner has loaded its model; reconnect quickly so
      // readiness is noticed within a fraction of a second, not after a long backoff.
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1_000,
    };
    this.#runner = new RunnerClientCtor(address, grpc.credentials.createInsecure(), options);
    this.#health = new HealthClientCtor(address, grpc.credentials.createInsecure(), options);
    this.#calls = new CallStream(this.#runner, () => this.#metadata(), model, onTimeout);
  }

  /** Embeds texts, or sequences of the model's own token ids. */
  async embed(inputs: string[] | number[][], options: EmbedCallOptions, meta: CallMeta): Promise<EmbedReply> {
    const payload = typeof inputs[0] === 'string' ? { texts: inputs as string[] } : { token_ids: (inputs as number[][]).map((ids) => ({ ids })) };
    return (await this.#call('Embed', 'embed', { ...payload, ...options }, meta)).embed!;
  }

  /** Scores documents against a query. */
  async rerank(query: string, documents: string[], options: RerankCallOptions, meta: CallMeta): Promise<RerankReply> {
    return (await this.#call('Rerank', 'rerank', { query, documents, ...options }, meta)).rerank!;
  }

  /** Scores every label of a classifier for each text or (text, text_pair) pair. */
  async classify(inputs: ClassifyText[], options: ClassifyCallOptions, meta: CallMeta): Promise<ClassifyReply> {
    const payload = inputs.map((x) => (typeof x === 'string' ? { text: x } : { text: x[0], text_pair: x[1] }));
    return (await this.#call('Classify', 'classify', { inputs: payload, ...options }, meta)).classify!;
  }

  /** The model's own tokenisation of each text. */
  async tokenize(texts: string[], addSpecialTokens: boolean, meta: CallMeta): Promise<TokenizeReply> {
    return (await this.#call('Tokenize', 'tokenize', { texts, add_special_tokens: addSpecialTokens }, meta)).tokenize!;
  }

  /** Text for each sequence of token ids. */
  async detokenize(sequences: number[][], skipSpecialTokens: boolean, meta: CallMeta): Promise<DetokenizeReply> {
    const body = { sequences: sequences.map((ids) => ({ ids })), skip_special_tokens: skipSpecialTokens };
    return (await this.#call('Detokenize', 'detokenize', body, meta)).detokenize!;
  }

  /** The model's static facts. */
  info(timeoutMs = 10_000): Promise<RunnerInfo> {
    return new Promise((resolve, reject) => {
      this.#runner.Info({}, this.#metadata(), { deadline: Date.now() + timeoutMs }, (err, reply) =>
        err ? reject(fromGrpcError(err, this.#model)) : resolve(reply!),
      );
    });
  }

  /** True when the runner's standard health service says SERVING. Never throws. */
  isServing(timeoutMs = 2_000): Promise<boolean> {
    return new Promise((resolve) => {
      this.#health.Check({ service: '' }, this.#metadata(), { deadline: Date.now() + timeoutMs }, (err, reply) =>
        resolve(!err && reply?.status === 'SERVING'),
      );
    });
  }

  /** A computing call on the Calls stream, in a client span when the batch is traced; the span's
   *  context travels with the call. */
  #call<K extends CallKind>(method: string, kind: K, body: NonNullable<Call[K]>, meta: CallMeta): Promise<CallResult__Output> {
    const fields: CallFields = { request_ids: meta.requestIds, trace_ids: meta.traceIds ?? [], compute_threads: meta.threads };
    if (!meta.trace) return this.#calls.call(kind, body, fields, this.#callTimeoutMs);
    const attributes = { 'rpc.system': 'grpc', 'rpc.service': 'edgeembed.runner.v1.Runner', 'rpc.method': method };
    return clientSpan(meta.trace, `edgeembed.runner.v1.Runner/${method}`, attributes, (headers) =>
      this.#calls.call(kind, body, { ...fields, trace_context: headers }, this.#callTimeoutMs));
  }

  /** The secret every call, the Calls stream included, carries. */
  #metadata(): grpc.Metadata {
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${this.#secret}`);
    return metadata;
  }

  /** Ends the Calls stream and closes both channels. */
  close(): void {
    this.#calls.close();
    this.#runner.close();
    this.#health.close();
  }
}
