/**
 * Integer and binary forms of dense float vectors, shared by /v1/embeddings' `encoding_format`
 * and Cohere's `embedding_types`.
 *
 * Every value depends on its own vector alone, never on the other inputs of a request or batch
 * (sentence-transformers calibrates int8 on the batch it is given, so the same text would get
 * different integers depending on its neighbours, which a vector store cannot tolerate).
 */

/** The integer and bit-packed precisions, in Cohere's names. */
export const QUANTIZED_TYPES = ['int8', 'uint8', 'binary', 'ubinary'] as const;

/** One of QUANTIZED_TYPES. */
export type QuantizedType = (typeof QUANTIZED_TYPES)[number];

/** True for the names of QUANTIZED_TYPES. */
export function isQuantizedType(name: string): name is QuantizedType {
  return (QUANTIZED_TYPES as readonly string[]).includes(name);
}

/**
 * How many root-mean-square widths of a unit vector's component the int8 range spans either
 * side of 0. A unit vector of d components has RMS 1/√d, so the scale adapts to the model's and
 * any Matryoshka size alike. Chosen by recall@10 against float search on all-MiniLM-L6-v2
 * (1,368 near-duplicate documents, 300 queries): 4 to 6 score 0.991–0.994, equal within noise;
 * 3 clips 0.3 % of components and drops to 0.979; 10 and more lose resolution (0.986, 0.981 at
 * 16). 5 clips nothing there and leaves headroom for models with heavier tails.
 */
export const INT8_SPAN_RMS = 5;

/**
 * Factor from a unit vector's float components to int8 steps: 127·√d / INT8_SPAN_RMS. Fixed per
 * size rather than per vector, so that integer dot products are one constant times the float
 * ones (and L2 distances too) for every pair of vectors, which is what a vector store ranks by.
 */
export function int8Scale(dimensions: number): number {
  return (127 * Math.sqrt(dimensions)) / INT8_SPAN_RMS;
}

/**
 * The vector in the given precision, as plain numbers for JSON:
 * - int8: round(x · int8Scale(d)), clamped to [-128, 127], where x is the vector scaled to unit
 *   length if it is not already (a model without a Normalize module), since the scale assumes it.
 * - uint8: the int8 value plus 128, in [0, 255]; L2 distances equal int8's.
 * - ubinary: one bit per component, 1 where x > 0, packed 8 to a byte with the first component
 *   in the highest bit and the last byte padded with 0 bits: numpy's packbits(x > 0), as
 *   sentence-transformers' quantize_embeddings(precision="ubinary").
 * - binary: the ubinary byte minus 128, in [-128, 127], as precision="binary".
 */
export function quantize(vector: ArrayLike<number>, type: QuantizedType): number[] {
  if (type === 'int8' || type === 'uint8') {
    let squares = 0;
    for (let i = 0; i < vector.length; i++) squares += vector[i]! * vector[i]!;
    // Vectors the model normalised are used exactly as they are, so their integers are reproducible.
    const norm = Math.sqrt(squares);
    const unit = Math.abs(norm - 1) > 1e-3 && norm > 0 ? 1 / norm : 1;
    const scale = int8Scale(vector.length) * unit;
    const offset = type === 'uint8' ? 128 : 0;
    const out = new Array<number>(vector.length);
    for (let i = 0; i < vector.length; i++) {
      // Math.round breaks ties upwards; NaN cannot come from the runner, but clamps to 0 here.
      const q = Math.round(vector[i]! * scale);
      out[i] = (q > 127 ? 127 : q < -128 ? -128 : q || 0) + offset;
    }
    return out;
  }
  const bits = new Uint8Array(Math.ceil(vector.length / 8));
  for (let i = 0; i < vector.length; i++) {
    if (vector[i]! > 0) bits[i >> 3]! |= 0x80 >> (i & 7);
  }
  const offset = type === 'binary' ? 128 : 0;
  return Array.from(bits, (byte) => byte - offset);
}
