import { Metadata, status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { ApiError, ERROR_KINDS } from '../../gateway/src/errors.ts';
import { toHttpError } from '../../gateway/src/http/error-envelope.ts';
import { fromGrpcError } from '../../gateway/src/runners/grpc-errors.ts';

describe('HTTP mapping of the error taxonomy', () => {
  it.each([
    ['validation', 400, 'invalid_request_error'],
    ['not_found', 404, 'invalid_request_error'],
    ['too_large', 413, 'invalid_request_error'],
    ['overloaded', 429, 'rate_limit_exceeded'],
    ['unavailable', 503, 'service_unavailable'],
    ['auth', 401, 'authentication_error'],
    ['internal', 500, 'internal_error'],
  ] as const)('%s → %i %s', (kind, code, type) => {
    const { status: s, body } = toHttpError(new ApiError(kind, 'msg', { param: 'input', code: 'c' }));
    expect(s).toBe(code);
    expect(body).toEqual({ error: { message: 'msg', type, param: 'input', code: 'c' } });
  });

  it('covers every kind', () => {
    for (const kind of ERROR_KINDS) expect(toHttpError(new ApiError(kind, 'x')).status).toBeGreaterThanOrEqual(400);
  });

  it('sends Retry-After in whole seconds, at least 1', () => {
    expect(toHttpError(new ApiError('overloaded', 'x', { retryAfterS: 0.2 })).headers).toEqual({ 'retry-after': '1' });
    expect(toHttpError(new ApiError('unavailable', 'x', { retryAfterS: 2.5 })).headers).toEqual({ 'retry-after': '3' });
  });

  it('hides the message of unexpected errors', () => {
    const { status: s, body } = toHttpError(new Error('password=hunter2'));
    expect(s).toBe(500);
    expect(JSON.stringify(body)).not.toContain('hunter2');
  });

  it('keeps Fastify client errors as 4xx', () => {
    expect(toHttpError(Object.assign(new Error('too big'), { statusCode: 413 })).status).toBe(413);
    expect(toHttpError(Object.assign(new Error('bad json'), { statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY' })).body.error)
      .toMatchObject({ type: 'invalid_request_error', code: 'fst_err_ctp_invalid_json_body' });
  });
});

describe('gRPC mapping of the error taxonomy', () => {
  const grpcError = (code: status) => Object.assign(new Error('x'), { code, details: 'detail', metadata: new Metadata() });

  it.each([
    [status.INVALID_ARGUMENT, 'validation'],
    [status.RESOURCE_EXHAUSTED, 'overloaded'],
    [status.UNAVAILABLE, 'unavailable'],
    [status.CANCELLED, 'unavailable'],
    [status.FAILED_PRECONDITION, 'unavailable'],
    [status.INTERNAL, 'internal'],
    [status.UNKNOWN, 'internal'],
  ])('status %i → %s', (code, kind) => {
    expect(fromGrpcError(grpcError(code), 'm').kind).toBe(kind);
  });

  it('tells clients to retry when the runner is down', () => {
    expect(fromGrpcError(grpcError(status.UNAVAILABLE), 'm').retryAfterS).toBeGreaterThan(0);
  });
});
