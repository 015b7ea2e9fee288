import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ApiError } from '../errors.ts';
import type { ModelLifecycle, Room } from './model-lifecycle.ts';

/**
 * What a runner takes besides its weights: Python, PyTorch, Transformers and the tokenizer.
 * Measured on all-minilm-l6-v2 (90 MB of weights, about 550 MB resident after warmup), and
 * used only until a model's first load has been measured.
 */
const RUNTIME_BYTES = 450 * 1024 * 1024;
const WEIGHT_FILE = /\.(safetensors|bin|pt|pth|onnx)$/;

/** A first guess at a model's resident memory: the runtime plus its weight files once. */
export function estimateModelBytes(folder: string): number {
  let weights = 0;
  const walk = (dir: string, depth: number) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      // Converted int8 weights replace the originals in memory rather than add to them.
      if (name.startsWith('.')) continue;
      const path = join(dir, name);
      const st = statSync(path, { throwIfNoEntry: false });
      if (st?.isDirectory() && depth < 3) walk(path, depth + 1);
      else if (st?.isFile() && WEIGHT_FILE.test(name)) weights += st.size;
    }
  };
  walk(folder, 0);
  return RUNTIME_BYTES + weights;
}

/** The limits of a LoadBudget; 0 means none. */
export interface BudgetLimits {
  maxLoaded: number;
  budgetBytes: number;
}

/**
 * Keeps the loaded models within MAX_LOADED_MODELS and MEMORY_BUDGET_MB: before a load, it
 * stops the least recently used models that nothing holds, one at a time, until the new one
 * fits. Loaded models count at their measured resident memory, loading ones at what they are
 * expected to take. Loads that start at the same moment can each see the same free room, so the
 * budget can be passed by at most the models loading at once.
 */
export class LoadBudget implements Room {
  readonly #limits: BudgetLimits;
  readonly #models: () => ModelLifecycle[];

  /** models: every servable model's lifecycle, read at each load. */
  constructor(limits: BudgetLimits, models: () => ModelLifecycle[]) {
    this.#limits = limits;
    this.#models = models;
  }

  async makeRoom(candidate: ModelLifecycle): Promise<void> {
    const { maxLoaded, budgetBytes } = this.#limits;
    for (;;) {
      const others = this.#models().filter((m) => m !== candidate && m.occupying);
      const used = others.reduce((n, m) => n + (m.state === 'ready' ? m.residentBytes() || m.expectedBytes() : m.expectedBytes()), 0);
      const need = candidate.expectedBytes();
      if (budgetBytes > 0 && need > budgetBytes) {
        // Unloading others would not help; leave them serving. Nor would a retry: no Retry-After.
        throw new ApiError('unavailable',
          `Cannot load model '${candidate.name}': it needs about ${mb(need)} MB, more than all of MEMORY_BUDGET_MB=${mb(budgetBytes)}; raise the budget.`,
          { code: 'insufficient_capacity' });
      }
      const overCount = maxLoaded > 0 && others.length + 1 > maxLoaded;
      const overMemory = budgetBytes > 0 && used + need > budgetBytes;
      if (!overCount && !overMemory) return;
      const idle = others.filter((m) => !m.busy && !m.pinned && m.state !== 'unloading');
      const victim = idle.sort((a, b) => (a.lastUsed ?? 0) - (b.lastUsed ?? 0))[0];
      if (!victim) {
        // A model already stopping frees its room soon; wait for it rather than refuse.
        const leaving = others.find((m) => m.state === 'unloading');
        if (leaving) {
          await leaving.unload('budget');
          continue;
        }
        const why = overCount
          ? `${others.length} model(s) are loaded and MAX_LOADED_MODELS is ${maxLoaded}`
          : `it needs about ${mb(need)} MB and ${mb(used)} of MEMORY_BUDGET_MB=${mb(budgetBytes)} are in use`;
        throw new ApiError('unavailable',
          `Cannot load model '${candidate.name}': ${why}, and none of the loaded models (${others.map((m) => m.name).join(', ')}) is idle and unpinned; retry shortly.`,
          { retryAfterS: 5, code: 'insufficient_capacity' });
      }
      await victim.unload('budget');
    }
  }
}

const mb = (bytes: number) => Math.round(bytes / 2 ** 20);
