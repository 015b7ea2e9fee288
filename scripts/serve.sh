#!/usr/bin/env bash
# Installs what is missing, makes sure the selected models' weights are in models/, and starts
# the server. MODELS defaults to the embedded all-minilm-l6-v2, which needs no network.
# Any argument is passed to the gateway: scripts/serve.sh --port 9000 --device cpu
set -euo pipefail
cd "$(dirname "$0")/.."
# npm installs a Node 24 binary (the `node` package); tools with a `#!/usr/bin/env node` line
# must find it before any older system Node.
export PATH="$PWD/node_modules/.bin:$PATH"
bash scripts/setup.sh
export MODELS="${MODELS:-all-minilm-l6-v2}"
.venv/bin/python scripts/download_models.py --quiet
exec node_modules/.bin/node gateway/src/main.ts "$@"
