import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { MODEL, ROOT } from './server.ts';

const PYTHON = join(ROOT, '.venv/bin/python');

/**
 * A models folder with the real MiniLM and a tiny stand-in of every other catalog model
 * (scripts/make_standins.py), and the real catalog, except that the stand-in gemma is 64 wide
 * instead of 768. `edit` may change the catalog's entries further.
 */
export function prepareStandins(edit: (entries: Record<string, unknown>[]) => void = () => {}): { modelsDir: string; catalog: string } {
  const dir = mkdtempSync(join(tmpdir(), 'standins-'));
  const modelsDir = join(dir, 'models');
  execFileSync(PYTHON, ['scripts/make_standins.py', '--out', modelsDir], { cwd: ROOT, stdio: 'ignore' });
  symlinkSync(join(ROOT, 'models', MODEL), join(modelsDir, MODEL));
  const doc = parse(readFileSync(join(ROOT, 'configs/model_config.yaml'), 'utf8')) as { models: Record<string, unknown>[] };
  for (const entry of doc.models) if (entry.name === 'embedding-gemma-300m') entry.matryoshka_dims = [32, 16, 8];
  edit(doc.models);
  const catalog = join(dir, 'catalog.yaml');
  writeFileSync(catalog, stringify(doc));
  return { modelsDir, catalog };
}
