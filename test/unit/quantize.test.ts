import { describe, expect, it } from 'vitest';
import { int8Scale, INT8_SPAN_RMS, quantize } from '../../gateway/src/dialects/shared/quantize.ts';

/** A deterministic pseudo-random unit vector (xorshift), so failures reproduce. */
function unitVector(d: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const v = new Float32Array(d);
  for (let i = 0; i < d; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    v[i] = s / 2 ** 32 - 0.5;
  }
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

describe('int8 and uint8', () => {
  it('scale a unit vector by 127·√d / 5, round to nearest and clamp', () => {
    // d = 4: scale 50.8.
    expect(int8Scale(4)).toBeCloseTo(50.8, 12);
    expect(INT8_SPAN_RMS).toBe(5);
    const small = [0.5, -0.5, 0.5, -0.5];
    expect(quantize(small, 'int8')).toEqual([25, -25, 25, -25]);
    // d = 400: scale 508, so a component of 0.6 is past the range and clamps.
    const wide = new Array<number>(400).fill(0);
    [wide[0], wide[1], wide[2], wide[3]] = [0.6, -0.6, 0.001, -0.0009];
    wide[4] = Math.sqrt(1 - 0.72 - 0.001 ** 2 - 0.0009 ** 2);
    expect(quantize(wide, 'int8').slice(0, 5)).toEqual([127, -128, 1, 0, 127]);
  });

  it('scales a vector the model did not normalise to unit length first', () => {
    expect(quantize([2, 0, 0, 0], 'int8')).toEqual(quantize([1, 0, 0, 0], 'int8'));
    expect(quantize([3, -4, 0, 0], 'uint8')).toEqual(quantize([0.6, -0.8, 0, 0], 'uint8'));
    expect(quantize([0, 0, 0, 0], 'int8')).toEqual([0, 0, 0, 0]);
  });

  it('uint8 is int8 shifted by 128, so L2 distances are the same', () => {
    const a = unitVector(384, 1);
    const b = unitVector(384, 2);
    const i8 = [quantize(a, 'int8'), quantize(b, 'int8')];
    const u8 = [quantize(a, 'uint8'), quantize(b, 'uint8')];
    expect(u8[0]).toEqual(i8[0]!.map((x) => x + 128));
    const l2 = (x: number[], y: number[]) => x.reduce((s, xi, i) => s + (xi - y[i]!) ** 2, 0);
    expect(l2(u8[0]!, u8[1]!)).toBe(l2(i8[0]!, i8[1]!));
    for (const v of u8) expect(Math.min(...v) >= 0 && Math.max(...v) <= 255).toBe(true);
  });

  it('keeps int8 dot products at scale² times the float cosine', () => {
    for (const d of [64, 384, 1024]) {
      const scale = int8Scale(d);
      for (let seed = 1; seed < 20; seed++) {
        const a = unitVector(d, seed);
        const b = unitVector(d, seed + 100);
        // Half of a is b, so the pair has a cosine well away from 0.
        const c = a.map((x, i) => x + b[i]!);
        const norm = Math.hypot(...c);
        const cn = c.map((x) => x / norm);
        const qa = quantize(cn, 'int8');
        const qb = quantize(b, 'int8');
        const floatDot = cn.reduce((s, x, i) => s + x * b[i]!, 0);
        const intDot = qa.reduce((s, x, i) => s + x * qb[i]!, 0);
        expect(Math.abs(intDot / scale ** 2 - floatDot)).toBeLessThan(0.01);
      }
    }
  });

  it('never leaves the int8 range, and maps NaN to 0', () => {
    const q = quantize([3, -3, Number.NaN, 1e9, -1e9], 'int8');
    expect(q).toEqual([127, -128, 0, 127, -128]);
  });
});

describe('binary and ubinary', () => {
  it('pack x > 0 into bits, first component in the highest bit, as numpy.packbits', () => {
    expect(quantize([1, -1, 1, -1, 1, -1, 1, -1], 'ubinary')).toEqual([0b10101010]);
    expect(quantize([0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, -0.2, 0.3], 'ubinary')).toEqual([255, 0b01000000]);
    // 0 and -0 are not > 0.
    expect(quantize([0, -0, 0, 0, 0, 0, 0, 1e-30], 'ubinary')).toEqual([1]);
  });

  it('binary is the ubinary byte minus 128', () => {
    const v = unitVector(384, 7);
    const u = quantize(v, 'ubinary');
    expect(u).toHaveLength(48);
    expect(quantize(v, 'binary')).toEqual(u.map((b) => b - 128));
    expect(quantize([1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1, -1], 'binary')).toEqual([127, -128]);
  });

  it('pads a size that is not a multiple of 8 with zero bits', () => {
    expect(quantize([1, 1, 1], 'ubinary')).toEqual([0b11100000]);
    expect(quantize([1, 1, 1], 'binary')).toEqual([0b11100000 - 128]);
  });
});
