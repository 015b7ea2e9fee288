/**
 * The one error taxonomy of the project. Services throw these; the HTTP layer maps each kind
 * to a status once (http/error-envelope.ts) and the runner client maps gRPC statuses onto it
 * once (runners/grpc-errors.ts).
 */
export const ERROR_KINDS = ['validation', 'not_found', 'conflict', 'too_large', 'unsupported_media', 'overloaded', 'unavailable', 'auth', 'internal'] as const;

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

/**
 * One input of a request could not be processed. `index` is its position in the inputs the
 * service submitted; the service renumbers it into the client's own request before answering,
 * since batching and caching change positions on the way.
 */
export class InputError extends ApiError {
  readonly index: number;
  readonly detail: string;

  constructor(index: number, detail: string, code: string | null) {
    super('validation', `input ${index} ${detail}`, { code });
    this.index = index;
    this.detail = detail;
  }

  /**
   * The client-facing error, `<param>[<index>] <detail>` in the client's own numbering, or with
   * `name` the input's own path where the dialect names its inputs otherwise.
   */
  forClient(param: string, index: number, name: (index: number) => string = (i) => `${param}[${i}]`): ApiError {
    return new ApiError('validation', `${name(index)} ${this.detail}`, { param, code: this.code });
  }
}
