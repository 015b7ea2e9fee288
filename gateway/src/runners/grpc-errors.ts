import { status as Status, type ServiceError } from '@grpc/grpc-js';
import { ApiError } from '../errors.ts';

/** What a failed call says: its status, and for an option the model does not offer, the field and code (a CallError's). */
export interface CallFailure extends Pick<ServiceError, 'code' | 'details'> {
  param?: string;
  errorCode?: string;
}

/** gRPC status of a runner call (or a CallError's, which carries one) → the project's error
 * taxonomy; the only place this lives. */
export function fromGrpcError(err: CallFailure, model: string): ApiError {
  switch (err.code) {
    case Status.INVALID_ARGUMENT:
    case Status.OUT_OF_RANGE:
      return new ApiError('validation', err.details || 'The model rejected the input.', { param: err.param || undefined, code: err.errorCode || undefined });
    case Status.RESOURCE_EXHAUSTED:
      return new ApiError('overloaded', `Model '${model}' is out of capacity; retry shortly.`, { retryAfterS: 1 });
    case Status.UNAVAILABLE:
    case Status.CANCELLED:
    case Status.DEADLINE_EXCEEDED:
    case Status.FAILED_PRECONDITION:
      return new ApiError('unavailable', `Model '${model}' is restarting; retry shortly.`, {
        retryAfterS: 2,
        code: 'model_unavailable',
        cause: err,
      });
    // UNAUTHENTICATED means the runner did not get our secret: a gateway fault, never the client's.
    default:
      return new ApiError('internal', `Model '${model}' failed on this request.`, { cause: err });
  }
}
