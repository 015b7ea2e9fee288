import { z } from 'zod';

/**
 * A keep-alive in seconds: `-1` (forever), `0`, a count of seconds, or a count with a unit as
 * Ollama writes them (`30s`, `5m`, `1h`).
 */
export const keepAlive = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const m = /^\s*(-1|\d+)\s*(s|m|h)?\s*$/.exec(String(v));
  if (!m || (m[1] === '-1' && m[2])) {
    ctx.addIssue({ code: 'custom', message: `expected -1, 0, seconds or a duration such as 30s, 5m or 1h, got "${v}"` });
    return z.NEVER;
  }
  return Number(m[1]) * ({ s: 1, m: 60, h: 3600 }[m[2] as 's' | 'm' | 'h'] ?? 1);
});
