#!/usr/bin/env bash
# Runs the docs/benchmarks.md scenarios against a relay with 2 workers and prints the table rows.
# Usage: tests/bench/run.sh [BUILD_DIR [SCENARIO...]]   (default: build; needs relay/wsrelay and
#        tests/bench/wsrelay_loadgen in it). SCENARIO: fanout hot idle handshake handshake-capped
#        handshake-jwt subscribe-ack history recovery deflate (default: all but recovery). Each scenario
#        gets a fresh relay, started here and stopped by its PID; subscribe-ack and history also a
#        redis-server (their broker), stopped the same way; recovery four relays on one
#        redis-server, one of which the load generator drains (SIGTERM to its PID).
#        Environment: WSRELAY_BENCH_PORT (default 18080; recovery uses it and the next three),
#        WSRELAY_BENCH_HISTORY_ROUNDS (default 2: history off/on pairs),
#        WSRELAY_BENCH_DEFLATE_ROUNDS (default 2: compression off/on pairs).
set -euo pipefail

build=${1:-build}
shift $(($# > 0 ? 1 : 0))
all_scenarios="fanout hot idle handshake handshake-capped handshake-jwt subscribe-ack history deflate recovery"
default_scenarios=${all_scenarios% recovery}
selected=" ${*:-$default_scenarios} "
for s in $selected; do
    [[ " $all_scenarios " == *" $s "* ]] || { echo "run.sh: unknown scenario $s" >&2; exit 2; }
done
want() { [[ $selected == *" $1 "* ]]; }
relay_bin=$build/relay/wsrelay
loadgen=$build/tests/bench/wsrelay_loadgen
port=${WSRELAY_BENCH_PORT:-18080}
url=ws://127.0.0.1:$port/ws
py=/usr/bin/python3
for f in "$relay_bin" "$loadgen"; do
    [[ -x $f ]] || { echo "run.sh: $f is missing; build first" >&2; exit 2; }
done
ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d /tmp/wsrelay-bench.XXXXXX)
relay_pid=
redis_pid=
stop_relay() {
    if [[ -n $relay_pid ]]; then
        kill -TERM "$relay_pid" 2>/dev/null || true
        wait "$relay_pid" 2>/dev/null || true
        relay_pid=
    fi
}
stop_redis() {
    if [[ -n $redis_pid ]]; then
        kill -TERM "$redis_pid" 2>/dev/null || true
        wait "$redis_pid" 2>/dev/null || true
        redis_pid=
    fi
}
# The recovery scenario's relays (PIDs); the one it drains has exited by the end.
more_relays=()
stop_more_relays() {
    local pid
    for pid in "${more_relays[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    more_relays=()
}
trap 'stop_relay; stop_more_relays; stop_redis; rm -rf "$work"' EXIT

# Starts a redis-server on a free loopback port (no persistence): $redis_pid, $redis_port.
start_redis() {
    command -v redis-server >/dev/null || {
        echo "run.sh: this scenario needs redis-server" >&2
        exit 2
    }
    redis_port=$($py -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0))
print(s.getsockname()[1])")
    redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
        --logfile "$work/redis.log" &
    redis_pid=$!
    for _ in $(seq 100); do
        redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && break
        sleep 0.1
    done
}

# launch_relay NAME PORT WORKERS DRAIN_MS EXTRA_YAML: starts a relay with the config
# $work/NAME.yaml (EXTRA_YAML appended), logging to $work/NAME.log; its PID in $launched_pid once
# /healthz answers (bounded at 10 s).
launch_relay() {
    local name=$1 relay_port=$2
    cat >"$work/$name.yaml" <<YAML
listen:
  host: 127.0.0.1
  port: $relay_port
workers: $3
drain:
  window_ms: $4
log:
  level: warn
$5
YAML
    : >"$work/$name.log"
    # The load generator's few connections publish and subscribe far faster than one client may
    # (limits.rate): the benchmarks measure the relay, not its rate limits. Set through the
    # environment so that EXTRA_YAML may hold a limits: section of its own.
    WSRELAY_LIMITS_RATE_PUBLISH_PER_SECOND=0 WSRELAY_LIMITS_RATE_SUBSCRIBE_PER_SECOND=0 \
        "$relay_bin" --config "$work/$name.yaml" 2>"$work/$name.log" &
    launched_pid=$!
    for _ in $(seq 100); do
        if $py -c "import http.client,sys; c=http.client.HTTPConnection('127.0.0.1',$relay_port,timeout=1)
c.request('GET','/healthz'); sys.exit(c.getresponse().status!=200)" 2>/dev/null; then
            return 0
        fi
        kill -0 "$launched_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "run.sh: the relay $name did not start:" >&2
    cat "$work/$name.log" >&2
    exit 1
}

# start_relay [EXTRA_YAML [WORKERS]]: EXTRA_YAML is appended to the config (the JWT scenarios'
# auth section, subscribe-ack's broker); WORKERS defaults to 2.
start_relay() {
    launch_relay relay "$port" "${2:-2}" 0 "${1:-}"
    relay_pid=$launched_pid
}

# Runs the load generator, keeps its JSON in $work/NAME.json and its summary on stderr.
run() {
    local name=$1
    shift
    echo "== $name: wsrelay_loadgen $*" >&2
    "$loadgen" "$@" --relay-pid "$relay_pid" >"$work/$name.json" || {
        echo "run.sh: $name failed (exit $?)" >&2
        cat "$work/$name.json" >&2
    }
}

fanout_row() {
    $py - "$1" "$2" <<'PY'
import json, sys
label, path = sys.argv[1], sys.argv[2]
r = json.load(open(path))
l = r["latency_us"]
print(f"| {label} | {r['delivered_per_s']:,.0f} | {r['loss']} | {l['p50']:,} / {l['p99']:,} / "
      f"{l['p999']:,} | {r.get('relay_cpu_us_per_delivery', float('nan')):.2f} | "
      f"{r['loadgen_cpu_us_per_delivery']:.2f} |")
PY
}

if want fanout; then
    start_relay
    run fanout fanout --url "$url" --subscribers 2000 --rate 20 --duration 20 --size 64 --timeout 90
    stop_relay
fi

if want hot; then
    start_relay
    run hot fanout --url "$url" --subscribers 100 --rate 2000 --duration 10 --size 64 --timeout 90
    stop_relay
fi

# Idle connections: the relay's RSS comes from the load generator; the kernel's share (socket
# structures in slab, TCP buffer pages) from /proc/meminfo and /proc/net/sockstat, sampled while
# the connections are held. Both ends of every connection live in this kernel, so the delta is
# halved for the server's share.
idle_run() {
    local name=$1 n=$2
    start_relay
    kernel_kib() { awk '/^Slab:/ {print $2}' /proc/meminfo; }
    local slab0 tcpmem0 slab1 tcpmem1
    slab0=$(kernel_kib)
    tcpmem0=$(awk '/^TCP:/ {print $NF}' /proc/net/sockstat)
    echo "== $name: wsrelay_loadgen idle --connections $n" >&2
    "$loadgen" idle --url "$url" --connections "$n" --hold 4 --timeout 180 --sources 16 \
        --relay-pid "$relay_pid" >"$work/$name.json" 2>"$work/$name.err" &
    local lg=$!
    for _ in $(seq 1800); do
        grep -q "connections up" "$work/$name.err" 2>/dev/null && break
        kill -0 "$lg" 2>/dev/null || break
        sleep 0.1
    done
    slab1=$(kernel_kib)
    tcpmem1=$(awk '/^TCP:/ {print $NF}' /proc/net/sockstat)
    wait "$lg" || echo "run.sh: $name failed: $(tail -3 "$work/$name.err")" >&2
    echo "{\"slab_kib\": $((slab1 - slab0)), \"tcp_pages\": $((tcpmem1 - tcpmem0))}" \
        >"$work/$name.kernel.json"
    stop_relay
}
if want idle; then
    idle_run idle 10000
    idle_run idle19k 19000
fi

if want handshake; then
    start_relay
    run handshake handshake --url "$url" --duration 10 --concurrency 64 --timeout 30
    stop_relay
fi

# The same with a connection cap: the soft open-file limit, and with it the table lws scans on
# every new connection, shrink from 20,000 to ~2,600 (docs/operations.md, connections per pod).
if want handshake-capped; then
    start_relay "limits:
  max_connections: 2000"
    run handshake_capped handshake --url "$url" --duration 10 --concurrency 64 --timeout 30
    stop_relay
fi

# Handshakes with a JWT in Authorization (python3-jwt makes the keys and tokens; exp in 2100).
jwt_handshakes() {
    $py - "$work" <<'PY'
import sys, jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
work = sys.argv[1]
claims = {"sub": "bench", "exp": 4102444800, "channels": ["bench:*"]}
open(f"{work}/hs256.token", "w").write(jwt.encode(claims, "b" * 32, algorithm="HS256"))
pub = serialization.PublicFormat.SubjectPublicKeyInfo
for name, key, alg in (("rs256", rsa.generate_private_key(65537, 2048), "RS256"),
                       ("es256", ec.generate_private_key(ec.SECP256R1()), "ES256")):
    open(f"{work}/{name}.pem", "wb").write(
        key.public_key().public_bytes(serialization.Encoding.PEM, pub))
    open(f"{work}/{name}.token", "w").write(jwt.encode(claims, key, algorithm=alg))
PY
    for alg in hs256 rs256 es256; do
        if [[ $alg == hs256 ]]; then
            keys="    secret: $(printf 'b%.0s' $(seq 32))"
        else
            keys="    public_key_file: $work/$alg.pem"
        fi
        start_relay "auth:
  enabled: true
  jwt:
$keys"
        run "handshake_$alg" handshake --url "$url" --duration 10 --concurrency 64 --timeout 30 \
            --header "Authorization: Bearer $(cat "$work/$alg.token")"
        stop_relay
    done
}
if want handshake-jwt; then
    jwt_handshakes
fi

# Subscribe acknowledgements on a Redis broker (docs/protocol.md, "Ack semantics"): 16
# connections, 1,000 subscribes/s in all, each followed by an unsubscribe, each connection resting
# 5 ms (--gap-ms) after its last answer (16 connections, not 8: a round is the subscribe, the
# unsubscribe, whose ack write coalescing delays by 2 ms, and the rest). live: a keeper connection
# holds the channels, so the worker has them and acks at once; fresh: every subscribe is a new
# channel, so the worker's Redis SUBSCRIBE must be confirmed first. One worker, so that the keeper
# and the measured connections share it (SO_REUSEPORT would otherwise spread them over workers).
if want subscribe-ack; then
    start_redis
    for policy in live fresh; do
        start_relay "broker:
  type: redis
  redis:
    url: redis://127.0.0.1:$redis_port/0" 1
        run "subscribe_ack_$policy" subscribe-ack --url "$url" --channels "$policy" \
            --connections 16 --rate 1000 --duration 10 --timeout 60
        stop_relay
    done
    stop_redis
fi

# The broker and channels of the history scenarios: a channel whose name starts with "hist" keeps
# its last 100 messages for 10 minutes (docs/config.md, "channels").
history_yaml() {
    cat <<YAML
broker:
  type: redis
  redis:
    url: redis://127.0.0.1:$redis_port/0
$1
channels:
  - pattern: "hist*"
    history_size: 100
    history_ttl_ms: 600000
YAML
}

# History on and off side by side (issue 16): one relay (2 workers) on a redis-server of its own;
# the fan-out scenario (2,000 subscribers × 20 msg/s, 64 B, 20 s) and the hot channel (100
# subscribers × 2,000 msg/s, 64 B, 10 s), published by a WebSocket client of the relay (so a
# channel with history goes through the relay's history publish), on a channel without history
# ("plain") and on one with history ("hist"), alternating (ABBA over WSRELAY_BENCH_HISTORY_ROUNDS
# rounds) on the same relay. The load generator reads the relay's and redis-server's CPU apart
# (server_cpu_by_pid). Redis's CPU per message is taken from the hot channel: /proc counts CPU in
# 10 ms ticks, and fan-out's 400 messages cost Redis about that much in all. The broker's delivery
# probes are off, so that Redis's CPU is the messages' own.
if want history; then
    start_redis
    start_relay "$(history_yaml "    probe_interval_ms: 0")"
    echo "$relay_pid $redis_pid" >"$work/history.pids"
    rounds=${WSRELAY_BENCH_HISTORY_ROUNDS:-2}
    for round in $(seq "$rounds"); do
        order="plain hist"
        ((round % 2)) || order="hist plain"
        for channel in $order; do
            run "history_${channel}_$round" fanout --url "$url" --channel "$channel" \
                --subscribers 2000 --rate 20 --duration 20 --size 64 --warmup --timeout 90 \
                --server-pid "$redis_pid"
            run "history_hot_${channel}_$round" fanout --url "$url" --channel "$channel" \
                --subscribers 100 --rate 2000 --duration 10 --size 64 --warmup --timeout 90 \
                --server-pid "$redis_pid"
        done
    done
    stop_relay
    stop_redis
fi

# permessage-deflate side by side (issue 18): one relay (2 workers, websocket.compression on, its
# default); the fan-out scenario with 1 KB payloads that compress like JSON (--padding words),
# 2,000 subscribers × 20 msg/s, 20 s, with subscribers that offer permessage-deflate (--deflate,
# inflating with zlib) and subscribers that offer nothing, alternating (ABBA over
# WSRELAY_BENCH_DEFLATE_ROUNDS rounds) on the same relay, then one subscriber per channel each way
# (the worst case). Around each run the relay's /metrics give the bytes it wrote to client sockets
# (wsrelay_sent_bytes_total) and its compressed frames.
relay_counters() {
    $py - "$port" <<'PY'
import http.client, json, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=5)
c.request("GET", "/metrics")
out = {}
for line in c.getresponse().read().decode().splitlines():
    for name in ("wsrelay_sent_bytes_total", "wsrelay_compressed_frames_total",
                 "wsrelay_messages_sent_total"):
        if line.startswith(name + " "):
            out[name] = float(line.split()[1])
    if line.startswith("wsrelay_compression_bytes_total{"):
        out[line.split()[0]] = float(line.split()[1])
print(json.dumps(out))
PY
}
if want deflate; then
    start_relay
    rounds=${WSRELAY_BENCH_DEFLATE_ROUNDS:-2}
    for round in $(seq "$rounds"); do
        order="plain deflate"
        ((round % 2)) || order="deflate plain"
        for kind in $order; do
            flags=()
            [[ $kind == deflate ]] && flags=(--deflate)
            relay_counters >"$work/deflate_${kind}_$round.before"
            run "deflate_${kind}_$round" fanout --url "$url" --subscribers 2000 --rate 20 \
                --duration 20 --size 1024 --padding words --timeout 90 "${flags[@]}"
            relay_counters >"$work/deflate_${kind}_$round.after"
        done
    done
    # The worst case for compression: one subscriber per channel, so each message is compressed
    # for one delivery (500 channels, 1,000 msg/s in all, 10 s), once each way.
    for kind in plain deflate; do
        flags=()
        [[ $kind == deflate ]] && flags=(--deflate)
        relay_counters >"$work/deflate_single_${kind}.before"
        run "deflate_single_${kind}" fanout --url "$url" --subscribers 500 --channels 500 \
            --rate 1000 --duration 10 --size 1024 --padding words --timeout 90 "${flags[@]}"
        relay_counters >"$work/deflate_single_${kind}.after"
    done
    stop_relay
fi

# Recovery storm (issue 16): four relays (2 workers each, drain.window_ms 5000) on one
# redis-server. 10,000 subscribers on 100 channels with history, spread over the first three
# relays; the fourth starts empty (a spare that only takes reconnects). The load generator
# publishes 200 msg/s (2 per channel) through the first relay, sends SIGTERM to the third 5 s
# in, and each subscriber it closes (1001) reconnects to one of the others (1, 2 or the spare, a
# third each) with "since". It reads Redis's INFO commandstats before the signal and once the last
# one has recovered; the survivors' history metrics are read afterwards. Twice, on fresh relays
# and Redis: the subscribers reconnecting at once (the harshest storm), and after a random 0-2 s
# as docs/protocol.md advises clients (so that they miss messages to recover).
recovery_run() {
    local jitter=$1 i
    start_redis
    recovery_pids=()
    for i in 0 1 2 3; do
        launch_relay "recovery$i" $((port + i)) 2 5000 "$(history_yaml "")"
        more_relays+=("$launched_pid")
        recovery_pids+=("$launched_pid")
    done
    ws() { echo "ws://127.0.0.1:$((port + $1))/ws"; }
    args=(recovery --url "$(ws 0)" --url "$(ws 1)" --url "$(ws 2)" --spare-url "$(ws 3)"
        --subscribers 10000 --channels 100 --rate 200 --duration 20 --size 64
        --drain-pid "${recovery_pids[2]}" --drain-after 5 --reconnect-jitter-ms "$jitter"
        --redis "127.0.0.1:$redis_port" --threads 2 --sources 16 --timeout 180 --drain-timeout 10
        --server-pid "${recovery_pids[0]}" --server-pid "${recovery_pids[1]}"
        --server-pid "${recovery_pids[3]}")
    echo "== recovery: wsrelay_loadgen ${args[*]}" >&2
    "$loadgen" "${args[@]}" >"$work/recovery_$jitter.json" || {
        echo "run.sh: recovery failed (exit $?)" >&2
        cat "$work/recovery_$jitter.json" >&2
    }
    for i in 0 1 3; do
        $py - "$((port + i))" >"$work/recovery_$jitter.metrics.$i" <<'PY' || true
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=5)
c.request("GET", "/metrics")
for line in c.getresponse().read().decode().splitlines():
    if line.startswith(("wsrelay_history_reads_total", "wsrelay_recoveries_total")):
        print(line)
PY
    done
    stop_more_relays
    stop_redis
}
if want recovery; then
    recovery_run 0
    recovery_run 2000
fi

echo
if want fanout || want hot; then
    echo "| Scenario | Deliveries/s | Loss | Latency p50 / p99 / p999 (µs) | Relay CPU µs/delivery | Loadgen CPU µs/delivery |"
    echo "|---|---:|---:|---:|---:|---:|"
    if want fanout; then
        fanout_row "Fan-out: 2,000 subscribers × 20 msg/s, 64 B, 20 s" "$work/fanout.json"
    fi
    if want hot; then
        fanout_row "Hot channel: 100 subscribers × 2,000 msg/s, 64 B, 10 s" "$work/hot.json"
    fi
    echo
fi
if want idle || want handshake || want handshake-capped || want handshake-jwt; then
    $py - "$work" <<'PY'
import json, sys
work = sys.argv[1]

def load(name):
    try:
        return json.load(open(f"{work}/{name}.json"))
    except (OSError, ValueError):
        return None

print("| Measure | Result |")
print("|---|---:|")
for name in ("idle", "idle19k"):
    idle, kernel = load(name), load(f"{name}.kernel")
    if idle is None and kernel is None:
        continue  # not run
    if idle is None or kernel is None or "connections" not in idle:
        print(f"| Idle ({name}) | failed |")
        continue
    n = idle["connections"]
    print(f"| Idle: relay RSS per connection at {n:,} connections | "
          f"{idle['relay_rss_per_connection_bytes']:,.0f} B "
          f"({idle['relay_rss_before_kib']:,.0f} → {idle['relay_rss_after_kib']:,.0f} KiB) |")
    print(f"| Idle: kernel memory per connection at {n:,} (slab ÷ 2 ends; TCP buffer pages) | "
          f"{kernel['slab_kib'] * 1024 / n / 2:,.0f} B; {kernel['tcp_pages']} pages |")
hs = load("handshake")
if hs is not None:
    print(f"| Handshakes/s ({hs['concurrency']} in flight, {hs['elapsed_s']:.0f} s) | "
          f"{hs['handshakes_per_s']:,.0f} "
          f"(relay CPU {hs['relay_cpu_us_per_handshake']:.0f} µs each, "
          f"p50 {hs['latency_us']['p50']:,} µs, {hs['errors']} errors) |")
capped = load("handshake_capped")
if capped is not None:
    print(f"| Handshakes/s with `limits.max_connections: 2000` | {capped['handshakes_per_s']:,.0f} "
          f"(relay CPU {capped['relay_cpu_us_per_handshake']:.0f} µs each, "
          f"p50 {capped['latency_us']['p50']:,} µs, {capped['errors']} errors) |")
for name, alg in (("hs256", "HS256"), ("rs256", "RS256 (2048-bit)"), ("es256", "ES256")):
    r = load(f"handshake_{name}")
    if r is None:
        continue
    print(f"| Handshakes/s with an {alg} JWT | {r['handshakes_per_s']:,.0f} (relay CPU "
          f"{r['relay_cpu_us_per_handshake']:.0f} µs each, p50 {r['latency_us']['p50']:,} µs, "
          f"{r['errors']} errors) |")
PY
    echo
fi
if want subscribe-ack; then
    $py - "$work" <<'PY'
import json, sys
work = sys.argv[1]
print("| Subscribe → ack (Redis broker, 1 worker, 16 connections, 1,000 subscribes/s, 10 s) "
      "| Acks | p50 / p90 / p99 / max (µs) | Errors |")
print("|---|---:|---:|---:|")
for policy, label in (("live", "Channel live on the worker (a keeper holds it)"),
                      ("fresh", "Channel new to the worker (one Redis SUBSCRIBE)")):
    try:
        r = json.load(open(f"{work}/subscribe_ack_{policy}.json"))
        l = r["latency_us"]
    except (OSError, ValueError, KeyError):
        print(f"| {label} | failed | | |")
        continue
    print(f"| {label} | {r['acks']:,} | "
          f"{l['p50']:,} / {l['p90']:,} / {l['p99']:,} / {l['max']:,} | "
          f"{r['errors'] + r['unanswered'] + r['disconnects']}"
          f"{'' if r['outcome'] == 'complete' else ' (' + r['outcome'] + ')'} |")
PY
fi

if want history; then
    $py - "$work" "${WSRELAY_BENCH_HISTORY_ROUNDS:-2}" <<'PY'
import json, sys
work, rounds = sys.argv[1], int(sys.argv[2])
relay_pid, redis_pid = (int(p) for p in open(f"{work}/history.pids").read().split())
print("| History (Redis broker, 1 relay × 2 workers) | Deliveries/s | Loss | Latency p50 / p99 (µs) "
      "| Relay CPU µs/delivery | Redis CPU µs/message | Loadgen CPU µs/delivery |")
print("|---|---:|---:|---:|---:|---:|---:|")
relay, redis = {}, {}
mean = lambda v: sum(v) / len(v)
for scenario, label, with_redis in (
        ("", "Fan-out 2,000 × 20 msg/s, 20 s", False),
        ("hot_", "Hot channel 100 × 2,000 msg/s, 10 s", True)):
    for r in range(1, rounds + 1):
        for channel, state in (("plain", "off"), ("hist", "on")):
            name = f"{label}, history {state}, round {r}"
            try:
                j = json.load(open(f"{work}/history_{scenario}{channel}_{r}.json"))
                by_pid = {p["pid"]: p for p in j["server_cpu_by_pid"]}
                relay_us = by_pid[relay_pid]["cpu_us_per_delivery"]
                redis_us = by_pid[redis_pid]["cpu_s"] * 1e6 / j["offered"]
            except (OSError, ValueError, KeyError, ZeroDivisionError):
                print(f"| {name} | failed | | | | | |")
                continue
            relay.setdefault((scenario, channel), []).append(relay_us)
            redis.setdefault((scenario, channel), []).append(redis_us)
            l = j["latency_us"]
            print(f"| {name} | {j['delivered_per_s']:,.0f} | {j['loss']} | "
                  f"{l['p50']:,} / {l['p99']:,} | {relay_us:.2f} | "
                  f"{f'{redis_us:.1f}' if with_redis else '—'} | "
                  f"{j['loadgen_cpu_us_per_delivery']:.2f} |")
print()
for scenario, label in (("", "fan-out"), ("hot_", "hot channel")):
    off, on = relay.get((scenario, "plain")), relay.get((scenario, "hist"))
    if off and on:
        print(f"- Relay CPU per delivery, history on ÷ off, {label} (means of {len(on)} and "
              f"{len(off)} runs): **{mean(on) / mean(off):.3f}**"
              f"{' (budget: 1.15)' if not scenario else ''}")
off, on = redis.get(("hot_", "plain")), redis.get(("hot_", "hist"))
if off and on:
    print(f"- Redis CPU per published message (hot channel): history off {mean(off):.1f} µs "
          f"(PUBLISH), on {mean(on):.1f} µs (FCALL wsrelay_publish)")
PY
    echo
fi

if want deflate; then
    $py - "$work" "${WSRELAY_BENCH_DEFLATE_ROUNDS:-2}" <<'PY'
import json, sys
work, rounds = sys.argv[1], int(sys.argv[2])
print("| permessage-deflate, 2,000 × 20 msg/s, 1 KB | Deliveries/s | Loss | Latency p50 / p99 (µs) "
      "| Relay CPU µs/delivery | Bytes written per delivery | Compressed frames | Loadgen CPU µs/delivery |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
cpu, wire = {}, {}
mean = lambda v: sum(v) / len(v)
runs = [(f"{kind}_{r}", kind, f"{label}, round {r}") for r in range(1, rounds + 1)
        for kind, label in (("plain", "subscribers offer nothing"),
                            ("deflate", "subscribers offer deflate"))]
runs += [(f"single_{kind}", f"single_{kind}", f"one subscriber per channel (500 × 2 msg/s), {label}")
         for kind, label in (("plain", "plain"), ("deflate", "deflate"))]
for run, kind, name in runs:
        try:
            j = json.load(open(f"{work}/deflate_{run}.json"))
            before = json.load(open(f"{work}/deflate_{run}.before"))
            after = json.load(open(f"{work}/deflate_{run}.after"))
            relay_us = j["relay_cpu_us_per_delivery"]
            sent = after["wsrelay_sent_bytes_total"] - before["wsrelay_sent_bytes_total"]
            per = sent / j["delivered"]
            frames = after["wsrelay_compressed_frames_total"] - before["wsrelay_compressed_frames_total"]
        except (OSError, ValueError, KeyError, ZeroDivisionError):
            print(f"| {name} | failed | | | | | | |")
            continue
        cpu.setdefault(kind, []).append(relay_us)
        wire.setdefault(kind, []).append(per)
        l = j["latency_us"]
        print(f"| {name} | {j['delivered_per_s']:,.0f} | {j['loss']} | {l['p50']:,} / {l['p99']:,} | "
              f"{relay_us:.2f} | {per:,.0f} | {frames:,.0f} | {j['loadgen_cpu_us_per_delivery']:.2f} |")
print()
if cpu.get("plain") and cpu.get("deflate"):
    print(f"- Relay CPU per delivery, deflate ÷ plain (means of {len(cpu['deflate'])} and "
          f"{len(cpu['plain'])} runs): **{mean(cpu['deflate']) / mean(cpu['plain']):.3f}** (budget: 1.25)")
    print(f"- Bytes written per delivery: plain {mean(wire['plain']):,.0f}, deflate "
          f"{mean(wire['deflate']):,.0f} (÷ {mean(wire['plain']) / mean(wire['deflate']):.2f})")
if cpu.get("single_plain") and cpu.get("single_deflate"):
    print(f"- One subscriber per channel (each message compressed for one delivery), relay CPU per "
          f"delivery deflate ÷ plain (one run each): "
          f"**{cpu['single_deflate'][0] / cpu['single_plain'][0]:.3f}**")
PY
fi
if want recovery; then
    $py - "$work" <<'PY'
import json, os, re, sys
work = sys.argv[1]
runs = []
for jitter in (0, 2000):
    try:
        runs.append((jitter, json.load(open(f"{work}/recovery_{jitter}.json"))))
    except (OSError, ValueError):
        runs.append((jitter, None))
print("| Recovery storm: 10,000 subscribers, 100 channels with history, 200 msg/s; 4 relays × 2 "
      "workers, the third drained (`drain.window_ms` 5,000) | "
      + " | ".join(f"Reconnect at once" if j == 0 else f"Reconnect after 0–{j / 1000:g} s"
                   for j, _ in runs) + " |")
print("|---|" + "---:|" * len(runs))

def row(label, fmt):
    cells = []
    for _, r in runs:
        try:
            cells.append(fmt(r) if r else "failed")
        except (KeyError, TypeError, ValueError):
            cells.append("—")
    print(f"| {label} | " + " | ".join(cells) + " |")

def metrics(jitter, i):
    path = f"{work}/recovery_{jitter}.metrics.{i}"
    values = {}
    if os.path.exists(path):
        for line in open(path):
            m = re.match(r'(\w+)\{result="(\w+)"\} (\S+)', line)
            if m:
                values[(m.group(1), m.group(2))] = float(m.group(3))
    return values

row("Outcome", lambda r: r["outcome"] + (f" ({r['first_error']})" if "first_error" in r else ""))
row("Subscribers closed by the drain (1001) → recovered / not recovered",
    lambda r: f"{r['drain_closes']:,} → {r['recovered']:,} / {r['not_recovered']:,}")
row("Messages offered / delivered", lambda r: f"{r['offered']:,} / {r['delivered']:,}")
row("Lost / duplicated / offset gaps / out of order",
    lambda r: f"{r['loss']} / {r['duplicates']} / {r['offset_errors']} / {r['out_of_order']}")
row("Messages delivered by recovery (between a subscribe with since and its ack)",
    lambda r: f"{r['recovered_messages']:,}")
row("SIGTERM → first / last 1001 close", lambda r: f"{r['drain_to_first_close_s']:.2f} / "
    f"{r['drain_to_last_close_s']:.2f} s")
row("SIGTERM → last subscriber recovered", lambda r: f"**{r['drain_to_last_recovered_s']:.2f} s**")
row("Close → recovered ack, per subscriber: p50 / p99 / max",
    lambda r: f"{r['recovery_ms']['p50']:,.1f} / {r['recovery_ms']['p99']:,.1f} / "
              f"{r['recovery_ms']['max']:,.1f} ms")
row("Redis history reads from the signal to the end (FCALL − XADD)",
    lambda r: f"**{r['history_reads']}** ({r['redis_calls_recovery'].get('fcall', 0):,} − "
              f"{r['redis_calls_recovery'].get('xadd', 0):,})")
row("… of which read the stream (XRANGE + XREVRANGE)", lambda r: f"{r['stream_reads']}")
row("Reconnects refused / disconnects / error frames",
    lambda r: f"{r['reconnect_failures']} / {r['disconnects']} / {r['error_frames']}")
for i, name in ((0, "relay 1"), (1, "relay 2"), (3, "spare")):
    cells = []
    for jitter, _ in runs:
        m = metrics(jitter, i)
        if not m:
            cells.append("—")
            continue
        cells.append(f"{m.get(('wsrelay_history_reads_total', 'ok'), 0):,.0f} reads "
                     f"({m.get(('wsrelay_history_reads_total', 'unavailable'), 0):,.0f} "
                     f"unavailable); {m.get(('wsrelay_recoveries_total', 'recovered'), 0):,.0f} "
                     f"recovered, {m.get(('wsrelay_recoveries_total', 'not_recovered'), 0):,.0f} "
                     f"not")
    print(f"| {name}'s metrics since its start: history reads; recoveries | "
          + " | ".join(cells) + " |")
PY
fi
