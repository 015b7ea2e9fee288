import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { settingsSchema } from '../../gateway/src/config/settings.ts';

// The settings table in docs/settings.md is written by hand; this keeps it true to the schema.
describe('docs/settings.md settings table', () => {
  const readme = readFileSync('docs/settings.md', 'utf8');
  const rows = new Map(
    [...readme.matchAll(/^\| `([A-Z0-9_]+)` \| ([^|]+) \|/gm)].map((m) => [m[1]!, m[2]!.trim()]),
  );

  it.each(Object.keys(settingsSchema.shape))('documents %s with its default', (name) => {
    expect(rows.has(name)).toBe(true);
    const fallback = settingsSchema.shape[name as keyof typeof settingsSchema.shape].safeParse(undefined);
    const documented = rows.get(name)!.replace(/`/g, '');
    if (!fallback.success) expect(documented).toBe('(required)');
    else expect(documented).toBe((Array.isArray(fallback.data) ? fallback.data.join(',') : String(fallback.data)) || '(empty)');
  });

  it('documents no setting that does not exist', () => {
    const known = new Set(Object.keys(settingsSchema.shape));
    expect([...rows.keys()].filter((n) => !known.has(n))).toEqual([]);
  });
});
