/**
 * The one error taxonomy of the project. Services throw these; the HTTP layer maps each kind
 * to a status once (http/error-envelope.ts) and the runner client maps gRPC statuses onto it
 * once (runners/grpc-errors.ts).
 */
export const ERROR_KINDS = ['validation', 'not_found', 'too_large', 'overloaded', 'unavailable', 'auth', 'internal'] as const;

/** A class of failure; decides the HTTP status and the OpenAI error `type`. */
export type ErrorKind = (typeof ERROR_KINDS)[number];

/** Optional detail of an ApiError. */
export interface ApiErrorOptions {
  /** The request field at fault, reported as the OpenAI envelope's `param`. */
  param?: string | null;
  /** A stable machine-readable code, reported as `code`. */
  code?: string | null;
  /** Seconds the client should wait before retrying; sent as Retry-After. */
  retryAfterS?: number;
  cause?: unknown;
}

/** An error whose message is safe to show to the client. */
export class ApiError extends Error {
  readonly kind: ErrorKind;
  readonly param: string | null;
  readonly code: string | null;
  readonly retryAfterS: number | undefined;

  constructor(kind: ErrorKind, message: string, opts: ApiErrorOptions = {}) {
    super(message, { cause: opts.cause });
    this.kind = kind;
    this.param = opts.param ?? null;
    this.code = opts.code ?? null;
    this.retryAfterS = opts.retryAfterS;
  }
}
