import type { z } from 'zod';
import { ApiError } from '../errors.ts';

/** Parses a request part with its schema; the first problem becomes a 400 naming the field. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  if (value === undefined || value === null || typeof value !== 'object') {
    throw new ApiError('validation', 'Request body must be a JSON object.');
  }
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const param = issue.path.length ? issue.path.map(String).join('.') : null;
  const where = param && !issue.message.startsWith(String(issue.path[0])) ? `${param}: ` : '';
  throw new ApiError('validation', `${where}${issue.message}`, { param });
}
