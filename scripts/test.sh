#!/usr/bin/env bash
# Installs what is missing and runs every suite: type check, vitest (unit + end-to-end) and
# pytest (runner + end-to-end with the openai Python SDK). Every suite runs even if an earlier
# one failed; the exit status is non-zero if any failed.
set -uo pipefail
cd "$(dirname "$0")/.."
# npm installs a Node 24 binary (the `node` package); tools with a `#!/usr/bin/env node` line
# must find it before any older system Node.
export PATH="$PWD/node_modules/.bin:$PATH"
bash scripts/setup.sh || exit 1
.venv/bin/python scripts/download_models.py --quiet all-minilm-l6-v2 || exit 1

failed=()
run() { local name=$1; shift; echo "== $name"; "$@" || failed+=("$name"); }
run "typecheck" node_modules/.bin/tsc --noEmit -p .
run "vitest" node_modules/.bin/vitest run
run "pytest" .venv/bin/python -m pytest -q

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED suites: ${failed[*]}"
  exit 1
fi
echo "all suites passed"
