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
