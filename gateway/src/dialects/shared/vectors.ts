import { endianness } from 'node:os';

// The runner sends little-endian float32; reading it through a Float32Array is only right on a
// little-endian host, which every platform Node and PyTorch ship for is.
if (endianness() !== 'LE') throw new Error('edge-embed needs a little-endian host');

/** Little-endian float32 bytes → plain numbers for a JSON answer. */
export function float32Row(row: Buffer): number[] {
  const aligned = row.byteOffset % 4 === 0 ? row : Buffer.from(row);
  return Array.from(new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4));
}

/** A packed row-major matrix of float32 → one number array per row. */
export function float32Rows(data: Buffer, dimensions: number): number[][] {
  const flat = float32Row(data);
  const rows: number[][] = [];
  for (let i = 0; i < flat.length; i += dimensions) rows.push(flat.slice(i, i + dimensions));
  return rows;
}
