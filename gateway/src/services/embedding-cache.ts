import { LRUCache } from 'lru-cache';

/** A cached result for one input. */
export interface CachedEmbedding {
  /** Little-endian float32 bytes of the vector, owned by the cache. */
  row: Buffer;
  /** Tokens the input took, so cache hits still count in usage. */
  tokens: number;
}

/**
 * Per-model LRU of computed vectors. The key is the full text plus a variant string naming
 * every option that changes the vector, so two requests share an entry only when the runner
 * would have produced the same numbers.
 */
export class EmbeddingCache {
  readonly #lru: LRUCache<string, CachedEmbedding> | undefined;

  /** maxEntries 0 turns the cache off. */
  constructor(maxEntries: number) {
    this.#lru = maxEntries > 0 ? new LRUCache({ max: maxEntries }) : undefined;
  }

  /** The entry for text under variant, if cached. */
  get(variant: string, text: string): CachedEmbedding | undefined {
    return this.#lru?.get(key(variant, text));
  }

  /** Stores a copy of row, so the entry does not pin the runner's whole reply buffer. */
  set(variant: string, text: string, row: Buffer, tokens: number): void {
    this.#lru?.set(key(variant, text), { row: Buffer.from(row), tokens });
  }
}

// U+0000 cannot be confused with a variant's own characters.
const key = (variant: string, text: string) => `${variant}\u0000${text}`;
