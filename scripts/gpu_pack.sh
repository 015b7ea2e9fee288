#!/usr/bin/env bash
# Packs everything bench/gpu_server_bench.py needs to run the whole server on a GPU machine that
# has Python, PyTorch, Transformers and sentence-transformers but no Node and no network, into
# .gpu-wheels/, the one git-ignored folder that travels with the working tree:
#
#   bash scripts/gpu_pack.sh       # -> .gpu-wheels/ (about 50 MiB)
#
#   .gpu-wheels/...                           what scripts/gpu_wheelhouse.sh packs for the runner
#   .gpu-wheels/node/node.xz                  the Node 24 binary npm installed here (30 MB as xz)
#   .gpu-wheels/node/node_modules.tar.xz      the gateway's production packages (npm ci --omit=dev)
#   .gpu-wheels/node/generated.tar.xz         gateway/src/generated, the git-ignored gRPC code
#
# Settings (environment): those of gpu_wheelhouse.sh; PACK_BUDGET_MIB (default 60), the most the
# folder may hold, since the working tree may carry 64 MiB in all.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${WHEELS_DIR:-.gpu-wheels}
node_bin=node_modules/node/bin/node
[ -x "$node_bin" ] || { echo "gpu_pack: $node_bin is missing; run scripts/setup.sh first" >&2; exit 1; }
[ -f gateway/src/generated/runner.ts ] || bash scripts/gen_proto.sh
bash scripts/gpu_wheelhouse.sh

mkdir -p "$out/node"
xz -6 -T0 -c "$node_bin" > "$out/node/node.xz"
staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
cp package.json package-lock.json "$staging/"
(cd "$staging" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
tar -C "$staging" -cJf "$out/node/node_modules.tar.xz" node_modules
tar -cJf "$out/node/generated.tar.xz" gateway/src/generated

bytes=$(du -sb "$out" | cut -f1)
mib=$(( (bytes + 1048575) / 1048576 ))
echo "gpu_pack: $out holds the runner's wheels, Node and the gateway's packages, $mib MiB in all"
if [ "$mib" -gt "${PACK_BUDGET_MIB:-60}" ]; then
  echo "gpu_pack: over the ${PACK_BUDGET_MIB:-60} MiB budget; the working tree may carry 64 MiB in all" >&2
  exit 1
fi
