/**
 * The gateway's one owner of device policy: where a runner runs, and how it is fed. The runner
 * measures what a forward pass costs on its device (runner/device_profile.py) and says in Info
 * how many calls it computes at once, the largest call worth making, and whether its passes run
 * on the host's cores; the gateway follows that unless a setting says otherwise. So no rule here
 * names a device: the same code feeds a 2-core CPU and a GPU as each measured best.
 */
import type { RunnerInfo } from './runner-client.ts';

/**
 * The device a runner starts on, and the environment that pins it there. `cuda:N` names the N-th
 * GPU this gateway sees. When CUDA_VISIBLE_DEVICES is already set (by a container runtime, a
 * scheduler or a person), that is its N-th entry, not physical GPU N: the runner gets exactly that
 * one GPU, which it then sees as cuda:0.
 */
export function gpuPinning(device: string, visible: string | undefined = process.env.CUDA_VISIBLE_DEVICES):
  { device: string; env: NodeJS.ProcessEnv } {
  const match = /^cuda:(\d+)$/.exec(device);
  if (!match) return { device, env: {} };
  const n = Number(match[1]);
  if (visible === undefined) return { device: 'cuda:0', env: { CUDA_VISIBLE_DEVICES: String(n) } };
  const listed = visible.split(',').map((s) => s.trim()).filter(Boolean);
  if (n >= listed.length) {
    throw new Error(`${device} needs at least ${n + 1} GPU(s), but CUDA_VISIBLE_DEVICES='${visible}' leaves ${listed.length} visible`);
  }
  return { device: 'cuda:0', env: { CUDA_VISIBLE_DEVICES: listed[n]! } };
}

/** How the gateway feeds one runner. */
export interface RunnerLimits {
  /** Calls in flight to it at most. */
  concurrency: number;
  /** Estimated tokens in one call at most (one longer input still goes alone). */
  callTokens: number;
  /** Its CPU threads when computing alone, for sharing the cores (cpu-share.ts); 0 for a runner whose passes leave the cores free. */
  coreThreads: number;
}

/** The settings that override a runner's profile; 0 leaves the choice to the runner. */
export interface LimitSettings {
  maxConcurrent: number;
  maxBatchTokens: number;
}

/** What a 2-core CPU measured, for a runner that reported no profile. */
const UNMEASURED = { concurrency: 1, call_tokens: 4096, host_compute: true };

/** The limits for a runner that described itself with info. */
export function runnerLimits(info: RunnerInfo | undefined, set: LimitSettings): RunnerLimits {
  const profile = info?.profile ?? UNMEASURED;
  return {
    concurrency: set.maxConcurrent || profile.concurrency || 1,
    callTokens: set.maxBatchTokens || profile.call_tokens || UNMEASURED.call_tokens,
    coreThreads: profile.host_compute ? (info?.compute_threads ?? 0) : 0,
  };
}
