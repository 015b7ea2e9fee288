/**
 * A cheap guess at how many tokens the runner will make of an input, before it is tokenised.
 *
 * The batcher only needs it to order a request's inputs by length and to size runner calls, so
 * it is a rough, never-failing estimate rather than a tokenizer: subword tokenizers average
 * roughly four UTF-8 bytes per token on Latin-script text (and about three on CJK, where this
 * guess runs low but still ranks inputs the right way round). Token ids are counted exactly.
 * Two tokens are added for the special tokens every encoder wraps an input in.
 */
export function estimateTokens(input: unknown): number {
  if (typeof input === 'string') return Math.ceil(Buffer.byteLength(input) / 4) + 2;
  if (Array.isArray(input)) {
    // A pair of texts (classification) is read as one sequence; ids are exact.
    return typeof input[0] === 'string' ? input.reduce((n: number, t) => n + estimateTokens(t), 0) : input.length + 2;
  }
  return 1;
}
