import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CatalogError, loadCatalog } from '../../gateway/src/config/catalog.ts';

function catalogFile(body: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'catalog-')), 'c.yaml');
  writeFileSync(path, body);
  return path;
}

describe('catalog', () => {
  it('reads the project catalog with defaults filled in', () => {
    const catalog = loadCatalog('configs/model_config.yaml');
    expect(catalog.get('all-minilm-l6-v2')).toMatchObject({
      hf_repo_id: 'sentence-transformers/all-MiniLM-L6-v2', revision: 'main', dtype: 'auto', precision: 'auto', requires_token: false,
    });
  });

  it.each([
    ['- {hf_repo_id: a/b, handler: a.B}', 'models[0]: name:'],
    ['- {name: m, hf_repo_id: a/b, handler: nodots}', 'models[0] (m): handler: a dotted import path'],
    ['- {name: m, hf_repo_id: a/b, handler: a.B, dtype: int8}', 'models[0] (m): dtype:'],
    ['- {name: m, hf_repo_id: a/b, handler: a.B, colour: red}', 'models[0] (m): (entry): Unrecognized key: "colour"'],
    ['- {name: m, hf_repo_id: a/b, handler: a.B}\n  - {name: m, hf_repo_id: a/b, handler: a.B}', "models[1] (m): duplicate name 'm'"],
    ['- {name: m, hf_repo_id: a/b, handler: a.B, matryoshka_dims: [64, -1]}', 'models[0] (m): matryoshka_dims.1:'],
    ['- {name: m, hf_repo_id: a/b, handler: a.B, default_prompts: {passage: p}}', 'models[0] (m): default_prompts: Unrecognized key: "passage"'],
  ])('names the entry and field of a bad entry: %s', (entry, message) => {
    const path = catalogFile(`models:\n  ${entry}\n`);
    expect(() => loadCatalog(path)).toThrow(CatalogError);
    expect(() => loadCatalog(path)).toThrow(message);
  });

  it('rejects a file without a models list, and a missing file', () => {
    expect(() => loadCatalog(catalogFile('x: 1'))).toThrow("expected a top-level 'models' list");
    expect(() => loadCatalog('/no/such/file.yaml')).toThrow('cannot read model catalog');
  });
});
