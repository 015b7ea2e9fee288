#!/bin/sh
# Entry point of the CUDA image (Dockerfile.cuda). The gateway starts one runner per entry of
# MODEL_DEVICE and pins each cuda:N runner to GPU N, but it does not count GPUs itself. So when
# MODEL_DEVICE is not set, this asks PyTorch how many GPUs the container sees and lists them all:
# one runner per GPU for every model. It then execs the gateway, which stays PID 1 and so gets
# SIGTERM itself and drains.
set -eu
cd "$(dirname "$0")/.."

explicit=
for arg in "$@"; do
  case "$arg" in
    -h | --help | --device | --device=* | --model-device | --model-device=*) explicit=1 ;;
  esac
done

if [ -z "${MODEL_DEVICE:-}" ] && [ -z "$explicit" ]; then
  count=$("${RUNNER_PYTHON:-.venv/bin/python}" -c 'import torch; print(torch.cuda.device_count())' 2>/dev/null) || count=0
  case "$count" in '' | *[!0-9]*) count=0 ;; esac
  if [ "$count" -eq 0 ]; then
    echo "edge-embed: no GPU is visible in this container: run it with --gpus all (in Kubernetes, a nvidia.com/gpu limit), or set MODEL_DEVICE (cpu, cuda:0,...)" >&2
    exit 2
  fi
  MODEL_DEVICE=cuda:0
  i=1
  while [ "$i" -lt "$count" ]; do
    MODEL_DEVICE="$MODEL_DEVICE,cuda:$i"
    i=$((i + 1))
  done
  export MODEL_DEVICE
  echo "edge-embed: $count GPU(s) visible, MODEL_DEVICE=$MODEL_DEVICE" >&2
fi

# cuda:N counts the GPUs this container sees: with CUDA_VISIBLE_DEVICES set, the gateway pins
# each runner to that list's N-th entry.
exec node_modules/.bin/node gateway/src/main.ts "$@"
