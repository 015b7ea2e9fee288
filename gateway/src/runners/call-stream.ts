import { status as Status, type ClientDuplexStream, type Metadata } from '@grpc/grpc-js';
import type { ApiError } from '../errors.ts';
import type { Call } from '../generated/edgeembed/runner/v1/Call.ts';
import type { CallResult__Output } from '../generated/edgeembed/runner/v1/CallResult.ts';
import type { RunnerClient as GeneratedRunnerClient } from '../generated/edgeembed/runner/v1/Runner.ts';
import { fromGrpcError } from './grpc-errors.ts';

/** Which call a Call carries: the name of its body. */
export type CallKind = NonNullable<Call['body']>;
/** A Call's fields besides its id, body and deadline. */
export type CallFields = Pick<Call, 'request_ids' | 'trace_ids' | 'compute_threads' | 'trace_context'>;

interface Waiting {
  resolve: (result: CallResult__Output) => void;
  reject: (err: ApiError) => void;
  timer: NodeJS.Timeout;
}

/**
 * Every computing call to one runner, on one long-lived `Calls` stream (proto/runner.proto).
 *
 * A unary call per batch costs a new HTTP/2 stream, its headers and, in the runner, a thread
 * hand-off: about half a millisecond a call more than a message on a stream that is already
 * open (the performance docs have the measurement). The stream is opened on the first call and
 * again on the first call after it ended; it carries the secret once, in its own metadata.
 *
 * Each call keeps its own deadline here, as a timer: the gateway stops waiting when it fires,
 * and the runner skips the call if it has not started by then. A stream that ends fails every
 * call still waiting on it with the status it ended with, as each unary call would have failed.
 */
export class CallStream {
  readonly #runner: GeneratedRunnerClient;
  readonly #metadata: () => Metadata;
  readonly #model: string;
  readonly #onTimeout: (() => void) | undefined;
  readonly #waiting = new Map<number, Waiting>();
  #stream: ClientDuplexStream<Call, CallResult__Output> | undefined;
  #nextId = 1;

  /**
   * metadata gives the stream's metadata (the runner's secret) each time one opens; onTimeout
   * is told of every call whose deadline passed.
   */
  constructor(runner: GeneratedRunnerClient, metadata: () => Metadata, model: string, onTimeout?: () => void) {
    this.#runner = runner;
    this.#metadata = metadata;
    this.#model = model;
    this.#onTimeout = onTimeout;
  }

  /** Sends one call and resolves with its result; rejects with the error it failed with. */
  call(kind: CallKind, body: NonNullable<Call[CallKind]>, fields: CallFields, timeoutMs: number): Promise<CallResult__Output> {
    const id = this.#nextId++;
    const stream = this.#open();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        reject(fromGrpcError({ code: Status.DEADLINE_EXCEEDED, details: `no result within ${timeoutMs} ms` }, this.#model));
        this.#onTimeout?.();
      }, timeoutMs);
      this.#waiting.set(id, { resolve, reject, timer });
      stream.write({ id, [kind]: body, ...fields, deadline_ms: Date.now() + timeoutMs });
    });
  }

  /** Ends the stream; calls still waiting fail as CANCELLED. */
  close(): void {
    this.#stream?.cancel();
  }

  #open(): ClientDuplexStream<Call, CallResult__Output> {
    if (this.#stream) return this.#stream;
    const stream = this.#runner.Calls(this.#metadata());
    this.#stream = stream;
    stream.on('data', (result: CallResult__Output) => this.#settle(result));
    // 'error' carries the status a broken stream ended with; 'end' is the runner closing it.
    stream.on('error', (err: { code: number; details: string }) => this.#ended(stream, err));
    stream.on('end', () => this.#ended(stream, { code: Status.UNAVAILABLE, details: 'the runner closed the stream' }));
    return stream;
  }

  #settle(result: CallResult__Output): void {
    const waiting = this.#waiting.get(result.id);
    if (!waiting) return; // its deadline passed; the caller has its error already
    this.#waiting.delete(result.id);
    clearTimeout(waiting.timer);
    if (result.body === 'error') {
      const { code, message, param, error_code: errorCode } = result.error!;
      waiting.reject(fromGrpcError({ code, details: message, param, errorCode }, this.#model));
    } else {
      waiting.resolve(result);
    }
  }

  #ended(stream: ClientDuplexStream<Call, CallResult__Output>, status: { code: number; details: string }): void {
    if (this.#stream !== stream) return;
    this.#stream = undefined;
    const waiting = [...this.#waiting.values()];
    this.#waiting.clear();
    for (const w of waiting) {
      clearTimeout(w.timer);
      w.reject(fromGrpcError(status, this.#model));
    }
  }
}
