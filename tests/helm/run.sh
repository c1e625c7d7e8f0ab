#!/usr/bin/env bash
# Chart tests for helm/wsrelay, without a helm binary:
#   bash tests/helm/run.sh [--wsrelay PATH] [--only REGEX] [--check-config-image IMAGE]
# (--only: just the render cases whose name matches REGEX, for a quicker run while editing.)
# Builds tests/helm/render (a Helm-compatible renderer on Debian's Go and sprig), installs the npm
# validator into tests/helm/node_modules if it is missing (install.sh), then renders the chart in both modes
# with every values file in tests/helm/values/ and checks each output:
#   - standalone-*.yaml (and no values file at all): the chart itself must render;
#   - sidecar-*.yaml: the example app chart (tests/helm/example-app, with the chart vendored into
#     its charts/) must render;
#   - fail-*.yaml / fail-sidecar-*.yaml: rendering must fail with the message on its
#     "# expect-error:" line, as helm does for a missing required value or for values its
#     values.schema.json refuses (fail-schema-*.yaml; the renderer validates them as helm does);
#   - in a values file that renders, each "# expect-output: TEXT" line: TEXT is a line (or part of
#     one) of the rendered manifests; "# expect-config: KEY=VALUE": every rendered relay config
#     has KEY (dotted path) equal to VALUE (a YAML scalar, or JSON); "# expect-notes: TEXT": the
#     rendered NOTES.txt contains TEXT;
#   - values.schema.json declares every key of values.yaml, and its config and hook parts are
#     what `wsrelay --print-config-schema` declares;
#   - every rendered object validated against the Kubernetes schemas, strictly (validate.mjs);
#   - yamllint on the output and on every values file;
#   - each rendered relay config through `wsrelay --check-config` (--wsrelay PATH, $WSRELAY_BIN,
#     or build/relay/wsrelay; with --check-config-image, the wsrelay of that container image, run by
#     podman as the chart runs it: tests/image/run.sh), and the alert rules through promtool when
#     it is installed;
#   - config.listen.internal_port: its container port, Service and scrape port (internal_port_case);
#   - the chart's dashboards/ and alerts/ byte-identical to their sources in metrics/, each
#     rendered dashboard ConfigMap carrying its file unchanged, and both switches refused when
#     the chart has nothing to ship.
# Needs the Debian packages golang-go golang-github-masterminds-sprig-dev
# golang-gopkg-yaml.v3-dev golang-github-xeipuuv-gojsonschema-dev yamllint, and node + npm. Ends with "helm: N passed, M failed".
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
CHART="$REPO/helm/wsrelay"
WSRELAY_BIN="${WSRELAY_BIN:-}"
ONLY=""
CHECK_CONFIG_IMAGE=""
while (($# > 0)); do
    case "$1" in
        --wsrelay)
            WSRELAY_BIN="$2"
            shift 2
            ;;
        --only)
            ONLY="$2"
            shift 2
            ;;
        --check-config-image)
            CHECK_CONFIG_IMAGE="$2"
            shift 2
            ;;
        *)
            echo "usage: bash tests/helm/run.sh [--wsrelay PATH] [--only REGEX] [--check-config-image IMAGE]" >&2
            exit 2
            ;;
    esac
done
if [[ -z "$WSRELAY_BIN" && -x "$REPO/build/relay/wsrelay" ]]; then
    WSRELAY_BIN="$REPO/build/relay/wsrelay"
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/wsrelay-helm.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

# shellcheck source=tests/checks.sh
source "$REPO/tests/checks.sh"
finish() {
    report helm
    exit
}

missing=()
command -v go >/dev/null || missing+=(golang-go)
[[ -d /usr/share/gocode/src/github.com/Masterminds/sprig ]] || missing+=(golang-github-masterminds-sprig-dev)
[[ -d /usr/share/gocode/src/gopkg.in/yaml.v3 ]] || missing+=(golang-gopkg-yaml.v3-dev)
[[ -d /usr/share/gocode/src/github.com/xeipuuv/gojsonschema ]] || missing+=(golang-github-xeipuuv-gojsonschema-dev)
command -v yamllint >/dev/null || missing+=(yamllint)
if ((${#missing[@]} > 0)); then
    fail "missing Debian packages: ${missing[*]} (apt-get install ${missing[*]})"
    finish
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    fail "node and npm are needed for the schema validator"
    finish
fi

# Debian ships Go sources in a GOPATH; sprig imports semver as .../semver/v3, which GOPATH mode
# resolves to Debian's .../semver through its go.mod (minimal module compatibility).
if (cd "$WORK" && GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS='' GOCACHE="$WORK/gocache" \
    timeout 300 go build -o "$WORK/render" "$HERE/render/main.go") >"$WORK/build.log" 2>&1; then
    pass "renderer builds"
else
    cat "$WORK/build.log"
    fail "renderer builds"
    finish
fi
if [[ -z "$(gofmt -l "$HERE/render")" ]]; then
    pass "renderer is gofmt-clean"
else
    fail "renderer is gofmt-clean (run gofmt -w tests/helm/render)"
fi

# The lock file pins every package; node_modules is reinstalled when the lock changed since.
NODE="$(command -v node)"
node() { timeout 120 "$NODE" "$@"; }
if ! bash "$HERE/install.sh" >"$WORK/npm.log" 2>&1; then
    cat "$WORK/npm.log"
    fail "npm ci (tests/helm/package-lock.json)"
    finish
fi

appversion="$(sed -n 's/^appVersion: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$CHART/Chart.yaml")"
tag="$(sed -n 's/^  tag: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$CHART/values.yaml" | head -n 1)"
if [[ -n "$appversion" && "$appversion" == "$tag" ]]; then
    pass "values image.tag equals Chart.yaml appVersion ($tag)"
else
    fail "values image.tag '$tag' differs from Chart.yaml appVersion '$appversion'"
fi

if node "$HERE/validate.mjs" config-keys "$CHART/values.yaml" "$REPO/conf/wsrelay.sample.yaml"; then
    pass "values config: has every key of conf/wsrelay.sample.yaml"
else
    fail "values config: has every key of conf/wsrelay.sample.yaml"
fi

if node "$HERE/validate.mjs" schema-covers "$CHART/values.yaml" "$CHART/values.schema.json"; then
    pass "values.schema.json declares every key of values.yaml"
else
    fail "values.schema.json declares every key of values.yaml"
fi
if [[ -n "$WSRELAY_BIN" ]]; then
    if node "$HERE/validate.mjs" values-schema "$CHART/values.schema.json" "$WSRELAY_BIN"; then
        pass "values.schema.json config and hook are what wsrelay --print-config-schema declares"
    else
        fail "values.schema.json config and hook are what wsrelay --print-config-schema declares"
    fi
fi

values_files=("$CHART/values.yaml" "$CHART/Chart.yaml" "$HERE/example-app/values.yaml"
    "$HERE/example-app/Chart.yaml" "$HERE"/values/*.yaml "$HERE"/fixtures/alerts/*.yaml
    "$REPO"/metrics/prometheus/*.yaml)
if yamllint -c "$HERE/yamllint.yaml" "${values_files[@]}" >"$WORK/lint.log" 2>&1; then
    pass "yamllint on the values files"
else
    cat "$WORK/lint.log"
    fail "yamllint on the values files"
fi

# Helm's .Files cannot read outside the chart, so the chart ships copies of the dashboards and
# alert rules of metrics/: each copy must be byte-identical to its source, and every one shipped.
copy_problems=()
for src in "$REPO"/metrics/grafana/*.json "$REPO"/metrics/prometheus/*.yaml; do
    case "$src" in
        *.test.yaml) continue ;;
        *.json) dest="$CHART/dashboards/$(basename "$src")" ;;
        *) dest="$CHART/alerts/$(basename "$src")" ;;
    esac
    copy="cp ${src#"$REPO"/} ${dest#"$REPO"/}"
    if [[ ! -e "$dest" ]]; then
        copy_problems+=("${dest#"$REPO"/} is missing ($copy)")
    elif ! cmp -s "$src" "$dest"; then
        copy_problems+=("${dest#"$REPO"/} differs from ${src#"$REPO"/} (edit the source, then $copy)")
    fi
done
for dest in "$CHART"/dashboards/*.json "$CHART"/alerts/*.yaml; do
    [[ -e "$dest" ]] || continue
    case "$dest" in
        *.json) src="$REPO/metrics/grafana/$(basename "$dest")" ;;
        *) src="$REPO/metrics/prometheus/$(basename "$dest")" ;;
    esac
    [[ -e "$src" ]] ||
        copy_problems+=("${dest#"$REPO"/} has no source ${src#"$REPO"/} (move it there and copy it back)")
done
if ((${#copy_problems[@]} == 0)); then
    pass "chart dashboards/ and alerts/ are byte-identical copies of metrics/"
else
    fail "chart dashboards/ and alerts/ are byte-identical copies of metrics/: ${copy_problems[*]}"
fi

# The alert rules' conventions that the chart's rewrite relies on: one job="wsrelay" (or
# container="wsrelay") per selector, one threshold token per rule but for the state alerts.
STATE_ALERTS=(WsrelayBrokerDown WsrelayNotReady WsrelayJwksRefreshFailing
    WsrelayTlsCertificateReloadFailing WsrelayOomKilled WsrelayTargetDown WsrelayAbsent)
for rules in "$REPO"/metrics/prometheus/*.yaml; do
    [[ "$rules" == *.test.yaml ]] && continue
    if (cd "$HERE" && node alert_rules.mjs source "$rules" "${STATE_ALERTS[@]}"); then
        pass "${rules#"$REPO"/}: every selector scoped once, one threshold token per rule"
    else
        fail "${rules#"$REPO"/}: every selector scoped once, one threshold token per rule"
    fi
done

# Before the image is built (tests/image/run.sh), its package lists are checked here.
# dockerfile_packages N: the packages of the Nth apt-get install in the Dockerfile.
dockerfile_packages() {
    awk -v want="$1" '
        /apt-get install/ { n++; on = (n == want); next }
        on && /^ *&&/ { on = 0 }
        on { gsub(/\\/, ""); for (i = 1; i <= NF; i++) print $i }
    ' "$REPO/Dockerfile" | sort -u
}
build_pkgs="$(sed -n '/^BUILD_PACKAGES=(/,/^)/p' "$REPO/tools/dev" | sed '1d;$d' | tr -s ' ' '\n' | sed '/^$/d' | sort -u)"
if [[ -n "$build_pkgs" && "$build_pkgs" == "$(dockerfile_packages 1)" ]]; then
    pass "Dockerfile: the build stage installs tools/dev BUILD_PACKAGES"
else
    diff <(echo "$build_pkgs") <(dockerfile_packages 1)
    fail "Dockerfile: the build stage installs tools/dev BUILD_PACKAGES"
fi
runtime_pkgs="$(dockerfile_packages 2)"
if compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null; then
    unknown=()
    for p in $(dockerfile_packages 1) $runtime_pkgs; do
        candidate="$(apt-cache policy "$p" 2>/dev/null | sed -n 's/^ *Candidate: //p')"
        [[ -n "$candidate" && "$candidate" != "(none)" ]] || unknown+=("$p")
    done
    if ((${#unknown[@]} == 0)); then
        pass "Dockerfile: every package exists in Debian (apt-cache policy)"
    else
        fail "Dockerfile: not in Debian: ${unknown[*]}"
    fi
else
    echo "note: no apt lists (apt-get update): Dockerfile package names not looked up"
fi
if [[ -n "$WSRELAY_BIN" ]]; then
    # Each library the binary links must come from a runtime-stage package; the libev plugin
    # of libwebsockets is loaded at run time, so it is named on its own.
    uncovered=()
    grep -qx libwebsockets-evlib-ev <<<"$runtime_pkgs" || uncovered+=("libwebsockets-evlib-ev")
    # Sanitizer runtimes (a build-asan binary) are not part of the image.
    for lib in $(objdump -p "$WSRELAY_BIN" | awk '$1 == "NEEDED" && $2 !~ /^lib(asan|ubsan|lsan|tsan)[.]/ { print $2 }'); do
        file="$(ldconfig -p | awk -v l="$lib" '$1 == l { print $NF; exit }')"
        pkg="$(dpkg -S "$file" 2>/dev/null || dpkg -S "$(readlink -f "$file")" 2>/dev/null)"
        pkg="${pkg%%:*}"
        if [[ -z "$pkg" ]] || ! grep -qx "$pkg" <<<"$runtime_pkgs"; then
            uncovered+=("$lib (${pkg:-no package})")
        fi
    done
    if ((${#uncovered[@]} == 0)); then
        pass "Dockerfile: the runtime stage has every library wsrelay links"
    else
        fail "Dockerfile: the runtime stage lacks ${uncovered[*]}"
    fi
fi

# The chart with the test dashboard and rules beside any real ones; the example app with the
# chart vendored as `helm dependency build` would.
mkdir -p "$WORK/chart" "$WORK/app"
cp -r "$CHART" "$WORK/chart/wsrelay"
cp "$HERE"/fixtures/dashboards/*.json "$WORK/chart/wsrelay/dashboards/"
cp "$HERE"/fixtures/alerts/*.yaml "$WORK/chart/wsrelay/alerts/"
# The chart as shipped, without the fixtures; and with nothing to ship, for the refusals.
mkdir -p "$WORK/shipped" "$WORK/empty"
cp -r "$CHART" "$WORK/shipped/wsrelay"
cp -r "$CHART" "$WORK/empty/wsrelay"
rm -f "$WORK"/empty/wsrelay/dashboards/*.json "$WORK"/empty/wsrelay/alerts/*.yaml
cp -r "$HERE/example-app" "$WORK/app/chat-app"
mkdir -p "$WORK/app/chat-app/charts"
cp -r "$CHART" "$WORK/app/chat-app/charts/wsrelay"

# dashboards_unchanged OUTPUT: each *.json of a rendered ConfigMap is, byte for byte, the chart's
# (or the test fixtures') file of that name, and parses as JSON; except for what the chart rewrites
# per release: the top-level uid (a Grafana uid of at most 40 characters, other than the file's),
# the top-level title (the file's, followed by " (namespace/fullname)") and, with
# dashboards.runbookBaseUrl, the start of each link to docs/. The uids go to OUTPUT.uids.
dashboards_unchanged() {
    (cd "$HERE" && node --input-type=module -e '
        import fs from "node:fs";
        import path from "node:path";
        import YAML from "yaml";
        const [out, ...dirs] = process.argv.slice(1);
        let ok = true;
        const uids = [];
        // The rendered text with the per-release lines put back as the file has them, or an error.
        const normalise = (text, file) => {
            const got = text.split("\n"), want = file.split("\n");
            if (got.length !== want.length) return [null, "has another number of lines"];
            for (let i = 0; i < got.length; i++) {
                if (got[i] === want[i]) continue;
                const uid = /^  "uid": "([^"]*)",$/.exec(got[i]);
                const title = /^  "title": "(.*)",$/.exec(want[i]);
                const url = /^(\s*"url": ")docs\/(.*)$/.exec(want[i]);
                if (uid && /^  "uid": /.test(want[i])) {
                    if (!/^[A-Za-z0-9_-]{1,40}$/.test(uid[1]) || got[i] === want[i]) {
                        return [null, `line ${i + 1}: uid ${uid[1]} is not a per-release Grafana uid`];
                    }
                    uids.push(uid[1]);
                } else if (title && got[i].startsWith(`  "title": "${title[1]} (`)) {
                    // the title of the release
                } else if (url && got[i].startsWith(url[1]) && got[i].endsWith(`/${url[2]}`)) {
                    // a runbook link under dashboards.runbookBaseUrl
                } else {
                    return [null, `line ${i + 1} differs: ${got[i]}`];
                }
                got[i] = want[i];
            }
            return [got.join("\n"), null];
        };
        for (const doc of YAML.parseAllDocuments(fs.readFileSync(out, "utf8"))) {
            const obj = doc.toJS();
            if (obj?.kind !== "ConfigMap") continue;
            for (const [key, text] of Object.entries(obj.data ?? {})) {
                if (!key.endsWith(".json")) continue;
                const file = dirs.map((d) => path.join(d, key)).find((f) => fs.existsSync(f));
                const where = `ConfigMap ${obj.metadata.name} ${key}`;
                if (!file) {
                    console.log(`  ${where}: no file ${key} in ${dirs.join(" or ")}`);
                    ok = false;
                } else if (normalise(text, fs.readFileSync(file, "utf8"))[1]) {
                    console.log(`  ${where}: differs from ${file}: ${normalise(text, fs.readFileSync(file, "utf8"))[1]}`);
                    ok = false;
                } else {
                    try {
                        JSON.parse(text);
                    } catch (e) {
                        console.log(`  ${where}: ${e.message}`);
                        ok = false;
                    }
                }
            }
        }
        fs.writeFileSync(`${out}.uids`, uids.map((u) => `${u}\n`).join(""));
        process.exit(ok ? 0 : 1);
    ' "$1" "$CHART/dashboards" "$HERE/fixtures/dashboards")
}

# relay_check_config EXTRACTED CONFIG: `wsrelay --check-config CONFIG` in a clean environment
# holding only the pod's WSRELAY_* variables (EXTRACTED/relay.env, from validate.mjs extract).
# A config with TLS names the files of the pod's Secret volume, which this machine lacks: the
# check reads the throwaway test PKI in their place (the environment wins over the file).
relay_check_config() {
    local pod_env=()
    [[ -e "$1/relay.env" ]] && mapfile -t pod_env <"$1/relay.env"
    if grep -Eq '^ +cert_file: +[^" ]' "$2"; then
        [[ -e "$WORK/pki/server.crt" ]] || bash "$REPO/tests/tls/make_certs.sh" "$WORK/pki" >/dev/null
        pod_env+=("WSRELAY_TLS_CERT_FILE=$WORK/pki/server.crt" "WSRELAY_TLS_KEY_FILE=$WORK/pki/server.key")
    fi
    if [[ -n "$CHECK_CONFIG_IMAGE" ]]; then
        # The config mounted read-only where the chart mounts its ConfigMap, the test PKI where the
        # environment names it (readable by the image's user, as fsGroup makes a Secret's files).
        local mounts=(-v "$2:/etc/wsrelay/config/wsrelay.yaml:ro") e
        if [[ -e "$WORK/pki" ]]; then
            chmod -R a+rX "$WORK/pki"
            mounts+=(-v "$WORK/pki:$WORK/pki:ro")
        fi
        local envs=()
        for e in "${pod_env[@]}"; do envs+=(-e "$e"); done
        CONTAINERS_CONF="$REPO/tests/image/containers.conf" timeout 60 podman run --rm --read-only \
            --network none --user 10001:10001 --cap-drop ALL --security-opt no-new-privileges \
            "${mounts[@]}" "${envs[@]}" "$CHECK_CONFIG_IMAGE" \
            --check-config /etc/wsrelay/config/wsrelay.yaml
        return
    fi
    env -i PATH="$PATH" "${pod_env[@]}" timeout 30 "$WSRELAY_BIN" --check-config "$2"
}

# check_render NAME OUTPUT: schema validation, yamllint, the relay configs and alert rules.
check_render() {
    local name="$1" out="$2" problems=0 f
    if ! node "$HERE/validate.mjs" manifests "$out"; then
        problems=1
    fi
    # yamllint judges the YAML; a dashboard's JSON inside its ConfigMap has lines as long as its
    # PromQL, and is compared with its file instead.
    awk 'skip && (/^$/ || index($0, "    ") == 1) { next }
         { skip = 0; print }
         /^  "[^"]+[.]json": [|]/ { skip = 1 }' "$out" >"$WORK/$name.lint.yaml"
    if ! yamllint -c "$HERE/yamllint.yaml" "$WORK/$name.lint.yaml"; then
        problems=1
    fi
    if ! dashboards_unchanged "$out"; then
        problems=1
    fi
    local extracted="$WORK/extract-$name"
    mkdir -p "$extracted"
    node "$HERE/validate.mjs" extract "$extracted" "$out" || problems=1
    for f in "$extracted"/*.config.yaml; do
        [[ -e "$f" ]] || continue
        if [[ -n "$WSRELAY_BIN" || -n "$CHECK_CONFIG_IMAGE" ]]; then
            # A clean environment: WSRELAY_* variables of the caller would change the result; the
            # pod's own (relay.env) take part, as they do at startup.
            if ! relay_check_config "$extracted" "$f"; then
                problems=1
            fi
        fi
    done
    for f in "$extracted"/*.rules.yaml; do
        [[ -e "$f" ]] || continue
        if command -v promtool >/dev/null; then
            timeout 60 promtool check rules "$f" || problems=1
        fi
    done
    return "$problems"
}

# check_expectations NAME VALUES_FILE: the values file's expect-output, expect-config and
# expect-notes lines hold for the render NAME (its output, extracted configs and NOTES.txt).
check_expectations() {
    local name="$1" values="$2" line problems=0 n=0
    while IFS= read -r line; do
        n=$((n + 1))
        if ! grep -qF -- "$line" "$WORK/$name.yaml"; then
            echo "  expected in the rendered manifests: $line"
            problems=1
        fi
    done < <(sed -n 's/^# expect-output: //p' "$values")
    while IFS= read -r line; do
        n=$((n + 1))
        if ! grep -qF -- "$line" "$WORK/$name.notes" 2>/dev/null; then
            echo "  expected in NOTES.txt: $line"
            problems=1
        fi
    done < <(sed -n 's/^# expect-notes: //p' "$values")
    local configs=()
    mapfile -t configs < <(sed -n 's/^# expect-config: //p' "$values")
    if ((${#configs[@]} > 0)); then
        n=$((n + ${#configs[@]}))
        node "$HERE/validate.mjs" expect-config "$WORK/extract-$name" "${configs[@]}" || problems=1
    fi
    if ((n == 0)); then
        return 0
    fi
    if ((problems == 0)); then
        pass "$name: $n expectations of $(basename "$values") hold"
    else
        fail "$name: expectations of $(basename "$values")"
    fi
}

# selected NAME: the case is run (no --only, or NAME matches it).
selected() {
    [[ -z "$ONLY" || "$1" =~ $ONLY ]]
}

# render_case NAME CHART_DIR [render args...]
render_case() {
    local name="$1" chart="$2"
    shift 2
    selected "$name" || return 0
    local out="$WORK/$name.yaml"
    if ! timeout 60 "$WORK/render" --notes "$WORK/$name.notes" "$@" "$chart" >"$out" 2>"$WORK/$name.err"; then
        cat "$WORK/$name.err"
        fail "$name: renders"
        return
    fi
    if check_render "$name" "$out"; then
        pass "$name: renders, validates, lints"
    else
        fail "$name: renders, validates, lints"
    fi
    local previous="" arg
    for arg in "$@"; do
        if [[ "$previous" == "-f" ]]; then
            check_expectations "$name" "$arg"
        fi
        previous="$arg"
    done
}

# fail_case NAME CHART_DIR VALUES: the render must fail with the values file's expect-error text,
# or, with an expect-check-config-error line, render and then be refused by `--check-config`.
fail_case() {
    local name="$1" chart="$2" values="$3"
    selected "$name" || return 0
    local expected
    expected="$(sed -n 's/^# expect-check-config-error: //p' "$values")"
    if [[ -n "$expected" ]]; then
        check_config_refuses "$name" "$chart" "$expected" -f "$values"
        return
    fi
    expected="$(sed -n 's/^# expect-error: //p' "$values")"
    if [[ -z "$expected" ]]; then
        fail "$name: has no '# expect-error:' line"
        return
    fi
    refuse_case "$name" "$chart" "$expected" -f "$values"
}

# check_config_refuses NAME CHART_DIR EXPECTED [render args...]: the chart renders (its own checks
# cannot see every rule across keys), and `wsrelay --check-config` refuses the rendered relay
# config with EXPECTED at a FILE:LINE:COLUMN position, as the pod would refuse it at start.
check_config_refuses() {
    local name="$1" chart="$2" expected="$3"
    shift 3
    if [[ -z "$WSRELAY_BIN" && -z "$CHECK_CONFIG_IMAGE" ]]; then
        fail "$name: needs the wsrelay binary (--wsrelay PATH) for --check-config"
        return
    fi
    if ! timeout 60 "$WORK/render" "$@" "$chart" >"$WORK/$name.yaml" 2>"$WORK/$name.err"; then
        cat "$WORK/$name.err"
        fail "$name: renders (then --check-config must refuse it)"
        return
    fi
    local extracted="$WORK/extract-$name" f refused=0
    mkdir -p "$extracted"
    node "$HERE/validate.mjs" extract "$extracted" "$WORK/$name.yaml" || true
    for f in "$extracted"/*.config.yaml; do
        [[ -e "$f" ]] || continue
        if ! relay_check_config "$extracted" "$f" >"$WORK/$name.check" 2>&1 &&
            awk -v want="$expected" 'index($0, want) && /:[0-9]+:[0-9]+: / { found = 1 }
                END { exit !found }' "$WORK/$name.check"; then
            refused=1
        fi
    done
    if ((refused)); then
        pass "$name: --check-config refuses the rendered config: $expected"
    else
        cat "$WORK/$name.check" 2>/dev/null
        fail "$name: --check-config must refuse the rendered config with: $expected"
    fi
}

# refuse_case NAME CHART_DIR EXPECTED [render args...]: the render must fail with EXPECTED.
refuse_case() {
    local name="$1" chart="$2" expected="$3"
    shift 3
    selected "$name" || return 0
    if timeout 60 "$WORK/render" "$@" "$chart" >"$WORK/$name.yaml" 2>"$WORK/$name.err"; then
        fail "$name: rendered, but must fail with: $expected"
    elif grep -qF -- "$expected" "$WORK/$name.err"; then
        pass "$name: refused: $expected"
    else
        cat "$WORK/$name.err"
        fail "$name: failed, but without: $expected"
    fi
}

if [[ -z "$WSRELAY_BIN" && -z "$CHECK_CONFIG_IMAGE" ]]; then
    echo "note: no wsrelay binary (--wsrelay PATH): rendered configs are not run through --check-config"
fi
if ! command -v promtool >/dev/null; then
    echo "note: no promtool (Debian package prometheus): alert rules are checked by schema only"
fi

render_case standalone-default "$WORK/chart/wsrelay"
render_case standalone-release-named-wsrelay "$WORK/chart/wsrelay" --name wsrelay --namespace realtime \
    --set-string image.tag=0.2.0 --set config.drain.window_ms=0
render_case sidecar-example-app "$WORK/app/chat-app" --name shop
RUNBOOKS=https://git.example.com/realtime/wsrelay/blob/v0.1.0/docs/operations.md
render_case standalone-shipped-dashboards-alerts "$WORK/shipped/wsrelay" \
    --set dashboards.enabled=true --set prometheusRule.enabled=true \
    --set serviceMonitor.enabled=true --set prometheusRule.runbookBaseUrl=$RUNBOOKS
# Two releases that ship their dashboards into one Grafana: in one namespace, or under one name in
# two namespaces; each dashboard gets a uid of its own, and the runbook links follow the base URL.
render_case dashboards-release-a "$WORK/shipped/wsrelay" --name a --namespace team1 \
    --set dashboards.enabled=true --set dashboards.runbookBaseUrl=https://docs.example.com/wsrelay/docs/
render_case dashboards-release-b "$WORK/shipped/wsrelay" --name b --namespace team1 --set dashboards.enabled=true
render_case dashboards-release-a-elsewhere "$WORK/shipped/wsrelay" --name a --namespace team2 \
    --set dashboards.enabled=true
uids="$(cat "$WORK"/dashboards-release-{a,b,a-elsewhere}.yaml.uids 2>/dev/null)"
if [[ "$(wc -l <<<"$uids")" == 3 && "$(sort -u <<<"$uids" | wc -l)" == 3 ]] &&
    grep -q '"url": "https://docs.example.com/wsrelay/docs/operations.md#the-alerts"' \
        "$WORK/dashboards-release-a.yaml"; then
    pass "dashboards: three releases, three uids ($(tr '\n' ' ' <<<"$uids")), runbook links on the base URL"
else
    fail "dashboards: three releases must give three uids, got: $(tr '\n' ' ' <<<"$uids")"
fi
# Without dashboards.runbookBaseUrl the links follow the folder of prometheusRule.runbookBaseUrl.
if grep -q "\"url\": \"${RUNBOOKS%operations.md}operations.md#the-alerts\"" \
    "$WORK/standalone-shipped-dashboards-alerts.yaml"; then
    pass "dashboards: runbook links on the folder of prometheusRule.runbookBaseUrl"
else
    fail "dashboards: runbook links on the folder of prometheusRule.runbookBaseUrl"
fi
refuse_case refuse-dashboards-without-files "$WORK/empty/wsrelay" \
    "dashboards.enabled, but the chart has no dashboards/*.json" --set dashboards.enabled=true
refuse_case refuse-rules-without-files "$WORK/empty/wsrelay" \
    "prometheusRule.enabled, but the chart has no alerts/*.yaml" --set prometheusRule.enabled=true \
    --set serviceMonitor.enabled=true --set prometheusRule.runbookBaseUrl=$RUNBOOKS
# Scrapes by a job of the user's own: no ServiceMonitor needed, the rules select that job.
render_case standalone-alerts-own-job "$WORK/shipped/wsrelay" --namespace chat \
    --set prometheusRule.enabled=true --set prometheusRule.runbookBaseUrl=$RUNBOOKS \
    --set-string 'prometheusRule.jobSelector=job="kubernetes-pods"' 
for values in "$HERE"/values/*.yaml; do
    base="$(basename "$values" .yaml)"
    case "$base" in
        fail-sidecar-*) fail_case "$base" "$WORK/app/chat-app" "$values" ;;
        fail-*) fail_case "$base" "$WORK/chart/wsrelay" "$values" ;;
        sidecar-*) render_case "$base" "$WORK/app/chat-app" -f "$values" ;;
        standalone-*) render_case "$base" "$WORK/chart/wsrelay" -f "$values" ;;
        *) fail "$base: values file names start with standalone-, sidecar- or fail-" ;;
    esac
done

# rules_scoped NAME SCOPE: every rendered rule of render NAME is scoped by SCOPE, with absolute
# runbook links (alert_rules.mjs rendered).
rules_scoped() {
    if [[ -e "$WORK/$1.yaml" ]] && (cd "$HERE" && node alert_rules.mjs rendered "$WORK/$1.yaml" "$2"); then
        pass "$1: every alert scoped by $2, runbook links absolute"
    else
        fail "$1: every alert scoped by $2, runbook links absolute"
    fi
}
rules_scoped standalone-shipped-dashboards-alerts 'namespace="default",job="release-name-wsrelay"'
rules_scoped standalone-alerts-overrides 'namespace="default",job="release-name-wsrelay"'
rules_scoped standalone-alerts-own-job 'job="kubernetes-pods"'
# The PodMonitor's job is <namespace>/<PodMonitor name>.
rules_scoped sidecar-dashboards-alerts 'namespace="default",job="default/release-name-wsrelay"'

# Each override of standalone-alerts-overrides.yaml in the rendered rules: an ALERT line of
# `alert_rules.mjs show` must match each PATTERN (grep -P), or the alert must be absent (-).
if [[ -e "$WORK/standalone-alerts-overrides.yaml" ]]; then
    (cd "$HERE" && node alert_rules.mjs show "$WORK/standalone-alerts-overrides.yaml") >"$WORK/overrides.rules"
fi
override_renders() {
    local alert="$1" line pattern
    shift
    line="$(grep -P "^$alert\t" "$WORK/overrides.rules" 2>/dev/null)"
    for pattern in "$@"; do
        if [[ "$pattern" == - ]]; then
            [[ -z "$line" ]] || { fail "alert overrides: $alert is disabled, but rendered"; return; }
        elif ! grep -qP -- "$pattern" <<<"$line"; then
            fail "alert overrides: $alert: no '$pattern' in: $line"
            return
        fi
    done
    pass "alert overrides: $alert ${*}"
}
override_renders WsrelayHookErrors $'^WsrelayHookErrors\t15m\t' '> 0\.2 # threshold' '"team":"realtime"' \
    "#wsrelayhookerrors"
override_renders WsrelayBrokerDown '"severity":"info"' '"page":"false"' '"team":"realtime"' \
    "\t$RUNBOOKS#wsrelaybrokerdown\t"
override_renders WsrelayTlsCertificateExpiring '< 86400 \* 21 # threshold'
override_renders WsrelayMemoryNearLimit -
# 3 x probe_interval_ms 5000 + probe_timeout_ms 3000 = 18 s.
override_renders WsrelayDeliveryProbeStale '> 18 # threshold' '"severity":"critical"' '"team":"realtime"'
override_renders WsrelayRestarting '"severity":"warning"' 'namespace="default",container="wsrelay"'
# internal_port_case NAME EXPECTED: what the rendered NAME holds of config.listen.internal_port
# (its container port, the <fullname>-internal Service, the port Prometheus scrapes). EXPECTED:
# "PORTNAME:PORT SCRAPEPORT:SCHEME", or "none SCRAPEPORT:SCHEME" without the internal port.
internal_port_case() {
    local name="$1" expected="$2" got
    [[ -e "$WORK/$name.yaml" ]] || return
    got="$(/usr/bin/python3 - "$WORK/$name.yaml" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
ports = [p for d in docs if d["kind"] == "Deployment"
         for c in d["spec"]["template"]["spec"]["containers"] if c["name"] == "wsrelay"
         for p in c.get("ports", [])]
internal = [p for p in ports if p["name"] in ("internal", "wsrelay-int")]
services = [d for d in docs if d["kind"] == "Service" and d["metadata"]["name"].endswith("-internal")]
if internal:
    svc = services[0]["spec"] if len(services) == 1 else None
    ok = (svc is None and internal[0]["name"] == "wsrelay-int") or (
        svc is not None and svc["type"] == "ClusterIP" and svc["ports"][0]["name"] == "internal"
        and svc["ports"][0]["targetPort"] == "internal")
    out = f'{internal[0]["name"]}:{internal[0]["containerPort"]}' if ok else "bad-internal-service"
else:
    out = "none" if not services else "stray-internal-service"
monitors = [d for d in docs if d["kind"] in ("ServiceMonitor", "PodMonitor")]
for m in monitors:
    for e in m["spec"].get("endpoints", []) + m["spec"].get("podMetricsEndpoints", []):
        out += f' {e["port"]}:{e.get("scheme", "http")}'
print(out)
PY
)"
    if [[ "$got" == "$expected" ]]; then
        pass "$name: internal port: $expected"
    else
        fail "$name: internal port: want '$expected', got '$got'"
    fi
}
internal_port_case standalone-default "internal:9090"
internal_port_case standalone-tls "internal:9090 internal:http"
internal_port_case standalone-one-port-tls "none http:https"
internal_port_case sidecar-example-app "wsrelay-int:9090 wsrelay-int:http"

finish
