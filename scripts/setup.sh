#!/usr/bin/env bash
# Installs everything the project needs: the Python venv (runner, tests), the npm packages
# (gateway, tests, a Node 24 binary) and the generated gRPC code. Each step remembers a hash of
# its inputs under .setup-stamps/ and is skipped when they have not changed, so a second run
# takes about a second.
#
#   PYTHON         interpreter for the venv (default: python3, 3.10 or newer)
#   TORCH_SPEC     pip arguments for torch, installed before the rest (default: torch==2.13.0);
#                  word-split on purpose, so it may carry options such as --index-url
set -euo pipefail
cd "$(dirname "$0")/.."

stamps=.setup-stamps
mkdir -p "$stamps"
digest() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }
fresh() { [ -f "$stamps/$1" ] && [ "$(cat "$stamps/$1")" = "$2" ]; }

py_key=$(digest pyproject.toml)
if [ ! -x .venv/bin/python ] || ! fresh python "$py_key"; then
  echo "setup: installing Python packages into .venv"
  [ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
  # torch first and pinned: the ranges in pyproject.toml are then already satisfied, so pip
  # does not go looking for a different (possibly multi-GB) build.
  .venv/bin/python -c 'import torch' 2>/dev/null || .venv/bin/python -m pip install --quiet ${TORCH_SPEC:-torch==2.13.0}
  .venv/bin/python -m pip install --quiet -e '.[dev]'
  echo "$py_key" > "$stamps/python"
fi

node_key=$(digest package.json package-lock.json)
if [ ! -x node_modules/.bin/node ] || ! fresh node "$node_key"; then
  echo "setup: installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$node_key" > "$stamps/node"
fi

proto_key=$(digest proto/runner.proto proto/grpc/health/v1/health.proto scripts/gen_proto.sh)
if [ ! -f runner/_proto/runner_pb2.py ] || [ ! -f gateway/src/generated/runner.ts ] || ! fresh proto "$proto_key"; then
  echo "setup: generating gRPC code"
  bash scripts/gen_proto.sh
  echo "$proto_key" > "$stamps/proto"
fi
