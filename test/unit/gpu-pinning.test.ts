import { describe, expect, it } from 'vitest';
import { gpuPinning } from '../../gateway/src/runners/gpu-pinning.ts';

describe('gpuPinning', () => {
  it('leaves the CPU alone, and shows a cuda:N runner only GPU N as its cuda:0', () => {
    expect(gpuPinning('cpu', undefined)).toEqual({ device: 'cpu', env: {} });
    expect(gpuPinning('cuda', undefined)).toEqual({ device: 'cuda', env: {} });
    expect(gpuPinning('cuda:3', undefined)).toEqual({ device: 'cuda:0', env: { CUDA_VISIBLE_DEVICES: '3' } });
  });

  it('counts within an inherited CUDA_VISIBLE_DEVICES rather than replacing it', () => {
    expect(gpuPinning('cuda:1', '2,3')).toEqual({ device: 'cuda:0', env: { CUDA_VISIBLE_DEVICES: '3' } });
    expect(gpuPinning('cuda:0', 'GPU-8f6c, GPU-1a2b')).toEqual({ device: 'cuda:0', env: { CUDA_VISIBLE_DEVICES: 'GPU-8f6c' } });
    expect(() => gpuPinning('cuda:2', '2,3')).toThrow(/cuda:2 needs at least 3 GPU\(s\), but CUDA_VISIBLE_DEVICES='2,3' leaves 2 visible/);
    expect(() => gpuPinning('cuda:0', '')).toThrow(/leaves 0 visible/);
  });
});
