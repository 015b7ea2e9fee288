import type { z } from 'zod';
import { ApiError } from '../../errors.ts';

/**
 * Parses a request body with its schema. The first problem becomes a 400 whose `param` is the
 * top-level field, as OpenAI reports it, and whose message points at the exact element.
 * Fields sent as null arrive here already dropped (see body.ts), so a required one that was
 * null is reported as missing.
 */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  if (value === undefined || value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ApiError('validation', 'Request body must be a JSON object.');
  }
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const [field, ...rest] = issue.path.map(String);
  if (field === undefined) throw new ApiError('validation', issue.message);
  const where = field + rest.map((p) => `[${p}]`).join('');
  const message = issue.message.startsWith(field) ? issue.message : `${where}: ${issue.message}`;
  throw new ApiError('validation', rest.length && !message.startsWith(where) ? `${where}: ${message}` : message, { param: field });
}
