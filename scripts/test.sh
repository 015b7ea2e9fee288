#!/usr/bin/env bash
# Installs what is missing and runs every suite: type check, vitest (unit + end-to-end), pytest
# (runner + end-to-end with the openai Python SDK) and a short form of the chaos suite. Every suite
# runs even if an earlier one failed; the exit status is non-zero if any failed. The last line sums
# up the vitest and pytest counts.
set -uo pipefail
cd "$(dirname "$0")/.."
# npm installs a Node 24 binary (the `node` package); tools with a `#!/usr/bin/env node` line
# must find it before any older system Node.
export PATH="$PWD/node_modules/.bin:$PATH"
bash scripts/setup.sh || exit 1
.venv/bin/python scripts/download_models.py --quiet all-minilm-l6-v2 || exit 1

results=.test-results
rm -rf "$results" && mkdir -p "$results"
failed=()
run() { local name=$1; shift; echo "== $name"; "$@" || failed+=("$name"); }
run typecheck tsc --noEmit -p .
run typecheck-ui tsc --noEmit -p gateway/ui
# vitest and pytest run side by side: both spend much of their time waiting for servers and models
# to start, so together they take minutes less than one after the other. pytest's output is shown
# once both have finished, so that the two do not interleave.
# In its own process group, so that a cancelled run stops pytest and every server it started: SIGINT
# lets pytest run its fixtures' teardown.
setsid .venv/bin/python -m pytest -q --junitxml="$results/pytest.xml" > "$results/pytest.log" 2>&1 &
pytest_pid=$!
trap 'kill -INT -- "-$pytest_pid" 2>/dev/null; wait "$pytest_pid"; exit 130' INT TERM
run vitest vitest run --reporter=default --reporter=json --outputFile.json="$results/vitest.json"
echo "== pytest"
wait "$pytest_pid" || failed+=("pytest")
cat "$results/pytest.log"

# The chaos scenarios whose expectations rot first when behaviour changes (bad inputs, poison in a
# shared batch, a killed runner, a hung one), after the other suites so that their timed targets
# have the machine to themselves; bench/chaos.py --quick runs all of them.
run chaos .venv/bin/python bench/chaos.py --quick --only bad_inputs,poison,runner_kill,sigstop --workdir "$results/chaos"

.venv/bin/python scripts/sum_test_results.py "$results/vitest.json" "$results/pytest.xml" || failed+=("results")
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
