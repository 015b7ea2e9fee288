import { ApiError, type ErrorKind } from '../errors.ts';

/** HTTP status and OpenAI error `type` for each kind; the only place this mapping lives. */
const HTTP: Record<ErrorKind, { status: number; type: string }> = {
  validation: { status: 400, type: 'invalid_request_error' },
  not_found: { status: 404, type: 'invalid_request_error' },
  conflict: { status: 409, type: 'invalid_request_error' },
  too_large: { status: 413, type: 'invalid_request_error' },
  unsupported_media: { status: 415, type: 'invalid_request_error' },
  overloaded: { status: 429, type: 'rate_limit_exceeded' },
  unavailable: { status: 503, type: 'service_unavailable' },
  auth: { status: 401, type: 'authentication_error' },
  internal: { status: 500, type: 'internal_error' },
};

/** The OpenAI error body: what the SDKs read as `body.error`. */
export interface ErrorEnvelope {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** Status, headers and body for any thrown value; non-ApiErrors leak no internals. */
export function toHttpError(err: unknown): { status: number; headers: Record<string, string>; body: ErrorEnvelope } {
  const api = err instanceof ApiError ? err : fromFramework(err);
  const { status, type } = HTTP[api.kind];
  const headers: Record<string, string> = {};
  if (api.retryAfterS !== undefined) headers['retry-after'] = String(Math.max(1, Math.ceil(api.retryAfterS)));
  return { status, headers, body: { error: { message: api.message, type, param: api.param, code: api.code } } };
}

/** Fastify's own client errors (bad JSON, body too large, wrong content type) keep their 4xx. */
function fromFramework(err: unknown): ApiError {
  const e = err as { statusCode?: number; code?: string; message?: string };
  const status = e?.statusCode;
  if (status === 413) return new ApiError('too_large', 'Request body is larger than MAX_REQUEST_BYTES allows.', { code: 'request_too_large' });
  if (status === 415) {
    return new ApiError('unsupported_media', `${e.message ?? 'Unsupported media type'}; send the body as JSON with Content-Type: application/json.`,
      { code: 'unsupported_media_type' });
  }
  if (status === 503) return new ApiError('unavailable', 'The server is shutting down.', { retryAfterS: 1 });
  if (status !== undefined && status >= 400 && status < 500) {
    return new ApiError('validation', e.message ?? 'Bad request.', { code: e.code?.toLowerCase() ?? null });
  }
  return new ApiError('internal', 'Internal server error.');
}

/** True when the error is a server-side failure worth an error-level log line. */
export function isServerFault(status: number): boolean {
  return status >= 500 && status !== 503;
}
