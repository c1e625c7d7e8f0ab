#!/usr/bin/env bash
# The chart tests' node modules (the schema validator): npm ci from tests/helm/package-lock.json
# into tests/helm/node_modules, only when the lock file changed since the last install.
#   bash tests/helm/install.sh
# run.sh calls it first. The image test's run.sh --check-config-image shares the modules and runs
# beside ctest's helm_chart, so tools/dev test calls it once before starting either: two npm ci in
# one directory at once would break each other. Prints npm's output and exits 1 when npm ci fails.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if cmp -s "$HERE/package-lock.json" "$HERE/node_modules/.installed-from-lock" 2>/dev/null; then
    exit 0
fi
if ! command -v npm >/dev/null; then
    echo "npm is needed for the chart tests' schema validator" >&2
    exit 1
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
if (cd "$HERE" && timeout 300 npm ci --no-audit --no-fund --loglevel=error) >"$log" 2>&1; then
    cp "$HERE/package-lock.json" "$HERE/node_modules/.installed-from-lock"
else
    cat "$log"
    exit 1
fi
