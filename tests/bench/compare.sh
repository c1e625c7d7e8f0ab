#!/usr/bin/env bash
# Reruns every benchmark of docs/benchmarks.md and regenerates its tables:
#   tests/bench/compare.sh [BUILD_DIR]        (default: build-bench, configured and built here)
# 1. Side by side, same run, same box: wsrelay, the tutorial designs (Go, Node), Nchan and the
#    epoll floor (tests/bench/peers), two instances of each on one shared redis-server, the load
#    generator spreading its connections over both; fan-out, hot channel, latency, chat mix and
#    handshakes. Servers are started fresh for every scenario and stopped by PID.
# 2. wsrelay alone (tests/bench/run.sh): idle memory, handshakes with JWTs.
# The tables go to stdout and, with WSRELAY_BENCH_WRITE_DOCS=1, replace the generated block of
# docs/benchmarks.md. Environment: WSRELAY_BENCH_KINDS (default "wsrelay go node nchan floor";
# wsrelay-presence is wsrelay with presence on every channel, for the features' cost table),
# WSRELAY_BENCH_SCALE (default 1: durations; 0.3 for a quick look whose numbers mean little),
# WSRELAY_BENCH_SCENARIOS (default "fanout hot latency chat handshake relay-only": a subset for a
# quick A/B; the generated table then lacks the others and should not be written to the docs).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
build=$(realpath -m "${1:-$root/build-bench}")  # absolute: the peers build from their own folders
kinds=${WSRELAY_BENCH_KINDS:-wsrelay go node nchan floor}
scale=${WSRELAY_BENCH_SCALE:-1}
scenarios=" ${WSRELAY_BENCH_SCENARIOS:-fanout hot latency chat handshake relay-only} "
py=/usr/bin/python3
port_a=18301
port_b=18302

if [[ ! -x $build/relay/wsrelay || ! -x $build/tests/bench/wsrelay_loadgen ]]; then
    # The bench preset's cache options (CMakePresets.json), in whichever directory was given.
    cmake -S "$root" --preset bench -B "$build" >/dev/null
    cmake --build "$build" -j2 --target wsrelay wsrelay_loadgen wsrelay_bench_floor >/dev/null
fi
export WSRELAY_BUILD=$build
"$here/peers/setup.sh" >&2
loadgen=$build/tests/bench/wsrelay_loadgen
ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d /tmp/wsrelay-compare.XXXXXX)
redis_pid=
stops=()
stop_servers() {
    local pid
    for pid in "${stops[@]}"; do "$here/peers/stop.sh" "$pid" >/dev/null 2>&1 || true; done
    stops=()
}
cleanup() {
    stop_servers
    if [[ -n $redis_pid ]]; then
        kill -TERM "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT

redis_port=$($py -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
    --logfile "$work/redis.log" &
redis_pid=$!
for _ in $(seq 100); do
    redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
done

seconds() { $py -c "print(max(2, round($1 * $scale)))"; }

# run KIND SCENARIO LOADGEN_ARGS...: two fresh instances, one load generator run, JSON kept.
run() {
    local kind=$1 scenario=$2
    shift 2
    [[ $scenarios == *" $scenario "* ]] || return 0
    local out pids=() a b
    a=$("$here/peers/start.sh" "$kind" "$port_a" "$redis_port" "$work")
    stops+=("${a##*stop=}")
    b=$("$here/peers/start.sh" "$kind" "$port_b" "$redis_port" "$work")
    stops+=("${b##*stop=}")
    for out in "$a" "$b"; do
        out=${out#cpu=}
        out=${out%% stop=*}
        IFS=, read -r -a more <<<"$out"
        pids+=("${more[@]}")
    done
    local args=(--url "ws://127.0.0.1:$port_a/ws" --url "ws://127.0.0.1:$port_b/ws" --sources 8)
    for out in "${pids[@]}"; do args+=(--server-pid "$out"); done
    if [[ $kind == wsrelay* ]]; then
        args+=(--protocol wsrelay)
    else
        args+=(--protocol raw)
    fi
    echo "== $kind $scenario: $*" >&2
    "$loadgen" "$@" "${args[@]}" >"$work/$kind.$scenario.json" 2>"$work/$kind.$scenario.err" || {
        echo "   failed (exit $?): $(tail -3 "$work/$kind.$scenario.err")" >&2
    }
    stop_servers
}

# The input of fan-out: Redis PUBLISH, except for Nchan (its own Redis format): HTTP to one
# instance, which reaches the other through Redis.
publish_args() {
    if [[ $1 == nchan ]]; then
        echo "--publish-via http --publish-url http://127.0.0.1:$port_a/pub"
    else
        echo "--publish-via redis --redis 127.0.0.1:$redis_port"
    fi
}

for kind in $kinds; do
    # shellcheck disable=SC2046
    run "$kind" fanout fanout --subscribers 2000 --rate 20 --duration "$(seconds 20)" --size 64 \
        --timeout 120 $(publish_args "$kind")
    # shellcheck disable=SC2046
    run "$kind" hot fanout --subscribers 100 --rate 2000 --duration "$(seconds 10)" --size 64 \
        --timeout 120 $(publish_args "$kind")
    # shellcheck disable=SC2046
    # 30 s: each message is 200 deliveries, so over 10 s the p99 would be the single worst message.
    run "$kind" latency fanout --subscribers 200 --rate 10 --duration "$(seconds 30)" --size 64 \
        --timeout 120 $(publish_args "$kind")
    if [[ $kind != floor ]]; then
        run "$kind" chat chat --clients 1000 --channels 100 --rate 200 --duration "$(seconds 10)" \
            --size 64 --timeout 120
    fi
    run "$kind" handshake handshake --duration "$(seconds 10)" --concurrency 64 --timeout 60
done

if [[ $scenarios == *" relay-only "* ]]; then
    "$here/run.sh" "$build" >"$work/relay-only.md" 2>"$work/relay-only.err" || {
        echo "run.sh failed: $(tail -5 "$work/relay-only.err")" >&2
    }
fi

machine="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
$py "$here/compare_table.py" "$work" "$kinds" "$machine" "$scale" >"$work/tables.md"
cat "$work/tables.md"
if [[ ${WSRELAY_BENCH_WRITE_DOCS:-0} == 1 ]]; then
    $py "$here/compare_table.py" --splice "$root/docs/benchmarks.md" "$work/tables.md"
    echo "docs/benchmarks.md updated; raw results in $work" >&2
fi
