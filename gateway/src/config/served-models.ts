import { statSync } from 'node:fs';
import { catalogEntrySchema, LOCAL_HANDLER, loadCatalog, type CatalogEntry } from './catalog.ts';
import { modelSpec, type Settings } from './settings.ts';

/** MODELS names something that cannot be served; the message says what and what can. */
export class ServedModelsError extends Error {}

/**
 * The catalog entries of the models MODELS names, in its order, read from MODEL_CONFIG now (at
 * start and at every reload). A `name=folder` entry gets an entry of its own, whose handler the
 * runner picks from the folder's files. Throws CatalogError or ServedModelsError.
 */
export function servedModels(settings: Settings): CatalogEntry[] {
  const catalog = loadCatalog(settings.MODEL_CONFIG);
  const specs = settings.MODELS.map(modelSpec);
  const unknown = specs.filter((m) => !m.path && !catalog.has(m.name)).map((m) => m.name);
  if (unknown.length) {
    throw new ServedModelsError(`not in the catalog ${settings.MODEL_CONFIG}: ${unknown.join(', ')}\n`
      + `Models in the catalog: ${[...catalog.keys()].join(', ')}\nOr serve a folder of your own as name=path/to/folder.`);
  }
  const missing = specs.filter((m) => m.path && !statSync(m.path, { throwIfNoEntry: false })?.isDirectory());
  if (missing.length) throw new ServedModelsError(`MODELS: no such folder: ${missing.map((m) => `${m.name}=${m.path}`).join(', ')}`);
  return specs.map((m) => (m.path
    ? catalogEntrySchema.parse({ name: m.name, hf_repo_id: `local:${m.path}`, handler: LOCAL_HANDLER })
    : catalog.get(m.name)!));
}
