#!/usr/bin/env bash
# Makes sure a Chromium binary exists for the browser tests (test/e2e/dashboard.test.ts), which
# drive it through playwright-core: browser downloads do not work on these machines, so it comes
# from Debian's `chromium` package. Does nothing when one is already installed or CHROMIUM_PATH
# names one. Prints the binary's path.
set -euo pipefail
if [ -n "${CHROMIUM_PATH:-}" ] && [ -x "$CHROMIUM_PATH" ]; then echo "$CHROMIUM_PATH"; exit 0; fi
for name in chromium chromium-browser; do
  if command -v "$name" >/dev/null; then command -v "$name"; exit 0; fi
done
as_root=()
[ "$(id -u)" -eq 0 ] || { command -v sudo >/dev/null && sudo -n true 2>/dev/null && as_root=(sudo -n); } || true
if ! command -v apt-get >/dev/null || { [ "$(id -u)" -ne 0 ] && [ ${#as_root[@]} -eq 0 ]; }; then
  echo "install_chromium: no chromium found; install Debian's 'chromium' package, or set CHROMIUM_PATH" >&2
  exit 1
fi
echo "install_chromium: installing Debian's chromium package" >&2
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2
command -v chromium
