import { describe, expect, it } from 'vitest';
import { gpuPinning, runnerLimits } from '../../gateway/src/runners/device-policy.ts';
import type { RunnerInfo } from '../../gateway/src/runners/runner-client.ts';

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

describe('runnerLimits', () => {
  const info = (profile: Partial<NonNullable<RunnerInfo['profile']>>, threads = 2) =>
    ({ compute_threads: threads, profile: { host_compute: false, concurrency: 0, call_tokens: 0, ...profile } }) as RunnerInfo;
  const unset = { maxConcurrent: 0, maxBatchTokens: 0 };

  it('feeds each runner as its own profile measured best', () => {
    expect(runnerLimits(info({ host_compute: true, concurrency: 1, call_tokens: 4096 }, 2), unset))
      .toEqual({ concurrency: 1, callTokens: 4096, coreThreads: 2 });
    // An accelerator's runner: two calls in flight, large calls, and its threads share no cores.
    expect(runnerLimits(info({ host_compute: false, concurrency: 2, call_tokens: 65536 }, 16), unset))
      .toEqual({ concurrency: 2, callTokens: 65536, coreThreads: 0 });
  });

  it('lets the settings override the profile', () => {
    expect(runnerLimits(info({ concurrency: 2, call_tokens: 65536 }), { maxConcurrent: 3, maxBatchTokens: 8192 }))
      .toMatchObject({ concurrency: 3, callTokens: 8192 });
  });

  it("falls back to a small CPU's values for a runner without a profile", () => {
    expect(runnerLimits({ compute_threads: 4, profile: null } as RunnerInfo, unset)).toEqual({ concurrency: 1, callTokens: 4096, coreThreads: 4 });
  });
});
