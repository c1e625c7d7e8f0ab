#!/usr/bin/env bash
# Installs what the comparison servers need and builds the ones that need building (README.md):
#   tests/bench/peers/setup.sh
# Debian packages (only those dpkg reports missing; nodejs/npm only when node/npm are not on PATH),
# npm ci in node/ (again only when package-lock.json changed), the Go peer into
# $WSRELAY_BUILD/tests/bench/wsrelay_bench_go, and, when $WSRELAY_BUILD is a configured CMake build
# dir, the wsrelay and wsrelay_bench_floor targets. WSRELAY_BUILD defaults to the checkout's build/.
# Safe to run again: each step is skipped or cheap when its result is already there.
set -euo pipefail

PACKAGES=(
    redis-server python3 python3-websockets
    golang-go golang-github-gorilla-websocket-dev golang-github-gomodule-redigo-dev
    nginx libnginx-mod-nchan
)
# A NodeSource nodejs bundles npm and conflicts with Debian's npm: install only what is missing.
NODE_PACKAGES=(nodejs npm)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build=${WSRELAY_BUILD:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/build}

log() { printf '==> %s\n' "$*" >&2; }

# Installs the packages of the given list that dpkg does not report as installed.
ensure_packages() {
    local missing=() pkg status
    for pkg in "$@"; do
        status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
        if [[ "$status" != "install ok installed" ]]; then
            missing+=("$pkg")
        fi
    done
    if ((${#missing[@]} == 0)); then
        return 0
    fi
    log "installing: ${missing[*]}"
    local sudo=()
    if ((EUID != 0)); then
        if command -v sudo >/dev/null; then
            sudo=(sudo)
        else
            echo "setup.sh: missing packages (${missing[*]}) and not root" >&2
            exit 1
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update
    "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
    # Debian starts the nginx service on install (port 80, every interface); the benchmark runs
    # its own instances and wants none of that.
    if [[ " ${missing[*]} " == *" nginx "* ]] && command -v systemctl >/dev/null &&
        systemctl is-active --quiet nginx 2>/dev/null; then
        log "stopping and disabling the nginx service that the package started"
        "${sudo[@]}" systemctl disable --now nginx
    fi
}

ensure_packages "${PACKAGES[@]}"
node_missing=()
command -v node >/dev/null || node_missing+=("${NODE_PACKAGES[0]}")
command -v npm >/dev/null || node_missing+=("${NODE_PACKAGES[1]}")
if ((${#node_missing[@]})); then ensure_packages "${node_missing[@]}"; fi

if ! cmp -s "$here/node/package-lock.json" "$here/node/node_modules/.installed-from-lock" \
    2>/dev/null; then
    log "npm ci in $here/node"
    (cd "$here/node" && timeout 300 npm ci --no-audit --no-fund --loglevel=error)
    cp "$here/node/package-lock.json" "$here/node/node_modules/.installed-from-lock"
fi

mkdir -p "$build/tests/bench"
log "go build -> $build/tests/bench/wsrelay_bench_go"
# Debian ships the Go libraries as sources in a GOPATH, hence GOPATH mode.
(cd "$here/go" && GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS='' \
    GOCACHE="$build/tests/bench/go-cache" \
    timeout 300 go build -o "$build/tests/bench/wsrelay_bench_go" main.go)

if [[ -f $build/CMakeCache.txt ]]; then
    log "cmake --build $build --target wsrelay wsrelay_bench_floor"
    cmake --build "$build" -j2 --target wsrelay wsrelay_bench_floor
else
    log "$build is not a CMake build dir: build the wsrelay and wsrelay_bench_floor targets there"
fi
