import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { z } from 'zod';
import { keepAlive } from './keep-alive.ts';

/**
 * One model of configs/model_config.yaml. The runner validates the same file with the same
 * rules (runner/catalog.py); field meanings are documented in the YAML file.
 */
export const catalogEntrySchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, "lowercase letters, digits, '.', '_' or '-'"),
  hf_repo_id: z.string().min(1),
  handler: z.string().regex(/^[A-Za-z_]\w*(\.[A-Za-z_]\w*)+$/, 'a dotted import path'),
  revision: z.string().min(1).default('main'),
  pip_package: z.string().min(1).optional(),
  dtype: z.enum(['auto', 'float32', 'bfloat16', 'float16']).default('auto'),
  precision: z.enum(['fp32', 'fp16', 'bf16', 'int8', 'auto']).default('auto'),
  max_tokens: z.number().int().positive().optional(),
  requires_token: z.boolean().default(false),
  matryoshka_dims: z.array(z.number().int().positive()).default([]),
  default_prompts: z.strictObject({ query: z.string().min(1).optional(), document: z.string().min(1).optional() }).default({}),
  /** This model's KEEP_ALIVE, in the same forms; absent: the setting's. */
  keep_alive: keepAlive.optional(),
});

/** The handler of a model served from a folder of its own (MODELS=name=folder): the runner picks one from its files. */
export const LOCAL_HANDLER = 'runner.detect.detect_handler';

/** A validated catalog entry. */
export type CatalogEntry = z.output<typeof catalogEntrySchema>;

const catalogSchema = z.object({ models: z.array(z.unknown()) });

/** Thrown with one message that names the file, the entry and the field. */
export class CatalogError extends Error {}

/** Reads and validates the catalog; the result is keyed by model name. */
export function loadCatalog(path: string): Map<string, CatalogEntry> {
  let doc: unknown;
  try {
    doc = parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new CatalogError(`cannot read model catalog ${path}: ${(err as Error).message}`);
  }
  const top = catalogSchema.safeParse(doc);
  if (!top.success) throw new CatalogError(`${path}: expected a top-level 'models' list`);

  const entries = new Map<string, CatalogEntry>();
  top.data.models.forEach((raw, i) => {
    const parsed = catalogEntrySchema.safeParse(raw);
    const label = typeof (raw as { name?: unknown })?.name === 'string' ? ` (${(raw as { name: string }).name})` : '';
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      const field = issue.path.join('.') || '(entry)';
      throw new CatalogError(`${path}: models[${i}]${label}: ${field}: ${issue.message}`);
    }
    if (entries.has(parsed.data.name)) {
      throw new CatalogError(`${path}: models[${i}]${label}: duplicate name '${parsed.data.name}'`);
    }
    entries.set(parsed.data.name, parsed.data);
  });
  return entries;
}
