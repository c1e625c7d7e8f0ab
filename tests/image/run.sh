#!/usr/bin/env bash
# The container image, built with podman and run the way the Helm chart runs it:
#   bash tests/image/run.sh [--wsrelay PATH] [--rebuild-base]
# (bash tools/dev image installs the packages and calls this.) As root, with podman, buildah,
# debootstrap, runc, redis-server, go, node and python3-websockets installed. Steps:
#   1. the debian:12 base without a registry: debootstrap --variant=minbase from the Debian mirror
#      this machine's apt sources name, those sources copied in, apt lists cleaned, then
#      podman import as docker.io/library/debian:12. Kept once built: --rebuild-base (or
#      WSRELAY_REBUILD_BASE=1) builds it again, e.g. for Debian's point releases;
#   2. podman build --pull=never of the Dockerfile as localhost/wsrelay:VERSION, with the OCI labels'
#      build arguments (VERSION from CMakeLists.txt's project(), REVISION from git);
#   3. the labels, and `wsrelay --version` in the image equal to them and to the host build's;
#   4. tests/helm/run.sh --check-config-image: every rendered chart config through
#      `wsrelay --check-config` inside the image;
#   5. tests/image/checks.py: the default chart's container run as its Deployment says (read-only
#      root, uid 10001, no capabilities, no new privileges, the ConfigMap mounted read-only,
#      --config as the chart passes it): health, readiness, metrics, a WebSocket round trip from
#      outside, two containers on one redis-server outside them, SIGTERM -> drain -> exit 0
#      within the chart's terminationGracePeriodSeconds.
# podman reads tests/image/containers.conf only (CONTAINERS_CONF): the machine's is left alone.
# Ends with "image: N passed, M failed".
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
WSRELAY_BIN="${WSRELAY_BIN:-}"
REBUILD_BASE="${WSRELAY_REBUILD_BASE:-0}"
while (($# > 0)); do
    case "$1" in
        --wsrelay)
            WSRELAY_BIN="$2"
            shift 2
            ;;
        --rebuild-base)
            REBUILD_BASE=1
            shift
            ;;
        *)
            echo "usage: bash tests/image/run.sh [--wsrelay PATH] [--rebuild-base]" >&2
            exit 2
            ;;
    esac
done
if [[ -z "$WSRELAY_BIN" && -x "$REPO/build/relay/wsrelay" ]]; then
    WSRELAY_BIN="$REPO/build/relay/wsrelay"
fi

export CONTAINERS_CONF="$HERE/containers.conf"
BASE=docker.io/library/debian:12
VERSION="$(sed -n 's/^project(wsrelay VERSION \([^ ]*\) .*/\1/p' "$REPO/CMakeLists.txt")"
IMAGE="localhost/wsrelay:$VERSION"
STARTED=$SECONDS

WORK="$(mktemp -d "${TMPDIR:-/tmp}/wsrelay-image.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# shellcheck source=tests/checks.sh
source "$REPO/tests/checks.sh"
FIGURES=()
finish() {
    local figures
    FIGURES+=("test wall time $((SECONDS - STARTED)) s")
    figures="$(printf '%s, ' "${FIGURES[@]}")"
    echo "image: ${figures%, }"
    report image
    exit
}

missing=()
for cmd in podman buildah debootstrap runc redis-server go node; do
    command -v "$cmd" >/dev/null || missing+=("$cmd")
done
if ((${#missing[@]} > 0)); then
    fail "missing commands: ${missing[*]} (bash tools/dev image installs their packages)"
    finish
fi
if ((EUID != 0)); then
    fail "needs root: debootstrap, and podman's rootful storage and networks"
    finish
fi

# debian_mirror: the first URI of this machine's apt sources that serves bookworm (one-line
# sources.list entries and deb822 .sources files).
debian_mirror() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -r "$f" ]] || continue
        awk '$1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
                if ($(i + 1) == "bookworm") print $i
            }' "$f"
    done
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -r "$f" ]] || continue
        awk 'function flush() {
                if (types ~ / deb( |$)/ && suites ~ / bookworm( |$)/ && enabled != "no") {
                    split(uris, u, " ")
                    print u[1]
                }
                types = uris = suites = enabled = ""
            }
            /^[ \t]*#/ { next }
            /^[ \t]*$/ { flush(); next }
            { key = tolower($1); $1 = "" }
            key == "types:" { types = $0 }
            key == "uris:" { uris = $0 }
            key == "suites:" { suites = $0 }
            key == "enabled:" { enabled = tolower($2) }
            END { flush() }' "$f"
    done
}

# copy_apt_sources ROOTFS: this machine's apt sources replace debootstrap's; a file whose keyring
# (signed-by) the base lacks would break apt-get update in the image build, and is left out.
copy_apt_sources() {
    local rootfs="$1" f keyring ok
    rm -f "$rootfs/etc/apt/sources.list"
    [[ -r /etc/apt/sources.list ]] && cp /etc/apt/sources.list "$rootfs/etc/apt/sources.list"
    for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
        [[ -r "$f" ]] || continue
        ok=1
        while IFS= read -r keyring; do
            [[ -e "$rootfs$keyring" ]] || ok=0
        done < <(grep -oiE 'signed-by[=:][[:space:]]*[^] [:space:]]+' "$f" | sed -E 's/^[^=:]*[=:][[:space:]]*//')
        if ((ok)); then
            cp "$f" "$rootfs/etc/apt/sources.list.d/"
        else
            echo "note: $f left out of the base image: its keyring is not in Debian's base"
        fi
    done
}

build_base() {
    local mirror rootfs="$WORK/rootfs" t0=$SECONDS
    mirror="$(debian_mirror | head -n 1)"
    if [[ -z "$mirror" ]]; then
        fail "base image: no Debian bookworm mirror in /etc/apt/sources.list{,.d}"
        finish
    fi
    echo "building $BASE: debootstrap --variant=minbase bookworm from $mirror"
    if ! debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1; then
        tail -n 20 "$WORK/debootstrap.log"
        fail "base image: debootstrap from $mirror"
        finish
    fi
    copy_apt_sources "$rootfs"
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
    if ! tar -C "$rootfs" -c . | podman import --change 'CMD ["bash"]' - "$BASE" >"$WORK/import.log" 2>&1; then
        cat "$WORK/import.log"
        fail "base image: podman import"
        finish
    fi
    rm -rf "$rootfs"
    FIGURES+=("base built in $((SECONDS - t0)) s, $(image_size "$BASE")")
    pass "base image $BASE built from $mirror in $((SECONDS - t0)) s"
}

image_size() {
    podman image inspect --format '{{.Size}}' "$1" | awk '{ printf "%.0f MB", $1 / 1e6 }'
}

if [[ "$REBUILD_BASE" != 1 ]] && podman image exists "$BASE"; then
    FIGURES+=("base cached")
    pass "base image $BASE (built before: --rebuild-base builds it again)"
else
    build_base
fi

# The OCI labels' arguments. The source only when origin is a public URL (no credentials, no path).
revision="$(git -C "$REPO" rev-parse HEAD 2>/dev/null || true)"
source_url="$(git -C "$REPO" remote get-url origin 2>/dev/null | sed -E 's#^(https://)[^/@]*@#\1#' || true)"
[[ "$source_url" == https://* ]] || source_url=""
licenses="$(sed -n 's/^ARG LICENSES=//p' "$REPO/Dockerfile")"
created="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
t0=$SECONDS
# Debian 12's buildah (1.28) reuses a cached LABEL step whatever the build arguments it expands
# are, so an image rebuilt from unchanged sources kept the previous revision and date: the labels
# that change from build to build are also given with --label, which it applies at commit. The
# others (version, licences, title, description) come from the Dockerfile alone.
if nice podman build --pull=never -t "$IMAGE" \
    --build-arg VERSION="$VERSION" --build-arg REVISION="$revision" \
    --build-arg SOURCE="$source_url" --build-arg CREATED="$created" \
    --label org.opencontainers.image.revision="$revision" \
    --label org.opencontainers.image.source="$source_url" \
    --label org.opencontainers.image.created="$created" \
    -f "$REPO/Dockerfile" "$REPO" >"$WORK/build.log" 2>&1; then
    FIGURES+=("image built in $((SECONDS - t0)) s, $(image_size "$IMAGE")")
    pass "image $IMAGE builds ($((SECONDS - t0)) s, $(image_size "$IMAGE"))"
else
    tail -n 40 "$WORK/build.log"
    fail "image $IMAGE builds"
    finish
fi

label() { podman image inspect --format "{{index .Labels \"org.opencontainers.image.$1\"}}" "$IMAGE"; }
problems=()
[[ "$(label version)" == "$VERSION" ]] || problems+=("version '$(label version)' is not '$VERSION'")
[[ "$(label revision)" == "$revision" ]] || problems+=("revision '$(label revision)' is not '$revision'")
[[ "$(label source)" == "$source_url" ]] || problems+=("source '$(label source)' is not '$source_url'")
[[ "$(label created)" == "$created" ]] || problems+=("created '$(label created)' is not '$created'")
[[ -n "$licenses" && "$(label licenses)" == "$licenses" ]] ||
    problems+=("licenses '$(label licenses)' is not the Dockerfile's '$licenses'")
[[ "$(label title)" == wsrelay && -n "$(label description)" ]] || problems+=("title or description")
if ((${#problems[@]} == 0)); then
    pass "OCI labels: version $VERSION, revision ${revision:-(no git)}, licenses $licenses, created $created"
else
    fail "OCI labels: ${problems[*]}"
fi

in_image="$(podman run --rm --read-only --network none "$IMAGE" --version 2>&1)"
if [[ -n "$WSRELAY_BIN" ]]; then
    on_host="$("$WSRELAY_BIN" --version 2>&1)"
else
    on_host="wsrelay $VERSION"
    echo "note: no host build (--wsrelay PATH): the image's --version is compared with CMakeLists.txt"
fi
if [[ "$in_image" == "wsrelay $VERSION" && "$in_image" == "$on_host" ]]; then
    pass "wsrelay --version in the image: '$in_image', as the label and the host build"
else
    fail "wsrelay --version in the image '$in_image', label '$VERSION', host build '$on_host'"
fi

if bash "$REPO/tests/helm/run.sh" --check-config-image "$IMAGE" >"$WORK/helm.log" 2>&1; then
    pass "every rendered chart config passes --check-config inside the image ($(tail -n 1 "$WORK/helm.log"))"
else
    cat "$WORK/helm.log"
    fail "every rendered chart config passes --check-config inside the image ($(tail -n 1 "$WORK/helm.log"))"
fi

# The renderer of tests/helm, built the same way, renders the chart for the run checks.
if ! (cd "$WORK" && GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS='' GOCACHE="$WORK/gocache" \
    timeout 300 go build -o "$WORK/render" "$REPO/tests/helm/render/main.go") >"$WORK/render.log" 2>&1; then
    cat "$WORK/render.log"
    fail "the chart renderer (tests/helm/render) builds"
    finish
fi
/usr/bin/python3 "$HERE/checks.py" --image "$IMAGE" --render "$WORK/render" --chart "$REPO/helm/wsrelay" \
    --work "$WORK" | tee "$WORK/checks.log"
counts="$(sed -n 's/^checks: \([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$WORK/checks.log")"
if [[ -n "$counts" ]]; then
    PASSED=$((PASSED + ${counts% *}))
    FAILED=$((FAILED + ${counts#* }))
    while IFS= read -r line; do FAILURES+=("${line#FAIL }"); done < <(grep '^FAIL ' "$WORK/checks.log")
else
    fail "tests/image/checks.py ended without its counts"
fi

finish
