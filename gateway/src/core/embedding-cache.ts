import { LRUCache } from 'lru-cache';

/** A cached result for one input. */
interface CachedResult {
  value: unknown;
  /** Tokens the input took, so cache hits still count in usage. */
  tokens: number;
}

/**
 * Per-model LRU of computed results. The key is the full text plus a variant string naming
 * every option that changes the result (output kind, prompt, dimensions), so two requests
 * share an entry only when the runner would have produced the same numbers.
 */
export class EmbeddingCache {
  readonly #lru: LRUCache<string, CachedResult> | undefined;

  /** maxEntries 0 turns the cache off. */
  constructor(maxEntries: number) {
    this.#lru = maxEntries > 0 ? new LRUCache({ max: maxEntries }) : undefined;
  }

  /** The entry for text under variant, if cached. The variant fixes the value's type. */
  get<T>(variant: string, text: string): { value: T; tokens: number } | undefined {
    return this.#lru?.get(key(variant, text)) as { value: T; tokens: number } | undefined;
  }

  /** Stores a value; Buffers are copied so an entry never pins a runner's whole reply. */
  set(variant: string, text: string, value: unknown, tokens: number): void {
    if (!this.#lru) return;
    const owned = Buffer.isBuffer(value) ? Buffer.from(value) : value;
    this.#lru.set(key(variant, text), { value: owned, tokens });
  }
}

// U+0000 cannot be confused with a variant's own characters.
const key = (variant: string, text: string) => `${variant}\u0000${text}`;
