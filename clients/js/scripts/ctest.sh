#!/usr/bin/env bash
# The JavaScript client's steps as CTest runs them (tests/CMakeLists.txt):
#   bash clients/js/scripts/ctest.sh build                 npm ci (when the lockfile changed), npm run build
#   bash clients/js/scripts/ctest.sh unit                  node's test runner on test/unit
#   bash clients/js/scripts/ctest.sh integration WSRELAY   test/integration against that relay binary
#   bash clients/js/scripts/ctest.sh browser WSRELAY       test/browser: headless /usr/bin/chromium
# npm packages come from the registry with the committed lockfile; nothing downloads a browser.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$HERE"
step="${1:-}"
for tool in node npm; do
    command -v "$tool" >/dev/null || { echo "ctest.sh: $tool is missing (tools/dev test installs it)" >&2; exit 1; }
done

case "$step" in
    build)
        if ! cmp -s package-lock.json node_modules/.installed-from-lock 2>/dev/null; then
            timeout 300 npm ci --no-audit --no-fund --loglevel=error
            cp package-lock.json node_modules/.installed-from-lock
        fi
        timeout 300 npm run --silent build
        ;;
    unit)
        timeout 300 node scripts/test.mjs unit
        ;;
    integration | browser)
        WSRELAY_BIN="${2:?usage: ctest.sh $step WSRELAY_BINARY}"
        export WSRELAY_BIN
        [[ -f dist/index.js ]] || { echo "ctest.sh: dist/ is missing: run the build step first" >&2; exit 1; }
        timeout 600 node scripts/test.mjs "$step"
        ;;
    *)
        echo "usage: ctest.sh build|unit|integration WSRELAY|browser WSRELAY" >&2
        exit 2
        ;;
esac
