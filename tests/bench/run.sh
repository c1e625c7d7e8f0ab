#!/usr/bin/env bash
# Runs the docs/benchmarks.md scenarios against a relay with 2 workers and prints the table rows.
# Usage: tests/bench/run.sh [BUILD_DIR]   (default: build; needs relay/wsrelay and
#        tests/bench/wsrelay_loadgen in it). Each scenario gets a fresh relay, started here and
#        stopped by its PID. Environment: WSRELAY_BENCH_PORT (default 18080).
set -euo pipefail

build=${1:-build}
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
stop_relay() {
    if [[ -n $relay_pid ]]; then
        kill -TERM "$relay_pid" 2>/dev/null || true
        wait "$relay_pid" 2>/dev/null || true
        relay_pid=
    fi
}
trap 'stop_relay; rm -rf "$work"' EXIT

# start_relay [EXTRA_YAML]: EXTRA_YAML is appended to the config (the JWT scenarios' auth section).
start_relay() {
    cat >"$work/relay.yaml" <<YAML
listen:
  host: 127.0.0.1
  port: $port
workers: 2
drain:
  window_ms: 0
log:
  level: warn
${1:-}
YAML
    : >"$work/relay.log"
    "$relay_bin" --config "$work/relay.yaml" 2>"$work/relay.log" &
    relay_pid=$!
    # Ready when /healthz answers; bounded at 10 s.
    for _ in $(seq 100); do
        if $py -c "import http.client,sys; c=http.client.HTTPConnection('127.0.0.1',$port,timeout=1)
c.request('GET','/healthz'); sys.exit(c.getresponse().status!=200)" 2>/dev/null; then
            return 0
        fi
        kill -0 "$relay_pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "run.sh: the relay did not start:" >&2
    cat "$work/relay.log" >&2
    exit 1
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

start_relay
run fanout fanout --url "$url" --subscribers 2000 --rate 20 --duration 20 --size 64 --timeout 90
stop_relay

start_relay
run hot fanout --url "$url" --subscribers 100 --rate 2000 --duration 10 --size 64 --timeout 90
stop_relay

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
idle_run idle 10000
idle_run idle19k 19000

start_relay
run handshake handshake --url "$url" --duration 10 --concurrency 64 --timeout 30
stop_relay

# The same with a connection cap: the soft open-file limit, and with it the table lws scans on
# every new connection, shrink from 20,000 to ~2,600 (docs/operations.md, connections per pod).
start_relay "limits:
  max_connections: 2000"
run handshake_capped handshake --url "$url" --duration 10 --concurrency 64 --timeout 30
stop_relay

# Handshakes with a JWT in Authorization (python3-jwt makes the keys and tokens; exp in 2100).
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

echo
echo "| Scenario | Deliveries/s | Loss | Latency p50 / p99 / p999 (µs) | Relay CPU µs/delivery | Loadgen CPU µs/delivery |"
echo "|---|---:|---:|---:|---:|---:|"
fanout_row "Fan-out: 2,000 subscribers × 20 msg/s, 64 B, 20 s" "$work/fanout.json"
fanout_row "Hot channel: 100 subscribers × 2,000 msg/s, 64 B, 10 s" "$work/hot.json"
echo
$py - "$work" "$work/handshake.json" "$work/handshake_capped.json" \
    "$work"/handshake_{hs256,rs256,es256}.json <<'PY'
import json, sys
work = sys.argv[1]
hs = json.load(open(sys.argv[2]))
print("| Measure | Result |")
print("|---|---:|")
for name in ("idle", "idle19k"):
    try:
        idle = json.load(open(f"{work}/{name}.json"))
        kernel = json.load(open(f"{work}/{name}.kernel.json"))
    except (OSError, ValueError):
        print(f"| Idle ({name}) | failed |")
        continue
    n = idle["connections"]
    print(f"| Idle: relay RSS per connection at {n:,} connections | "
          f"{idle['relay_rss_per_connection_bytes']:,.0f} B "
          f"({idle['relay_rss_before_kib']:,.0f} → {idle['relay_rss_after_kib']:,.0f} KiB) |")
    print(f"| Idle: kernel memory per connection at {n:,} (slab ÷ 2 ends; TCP buffer pages) | "
          f"{kernel['slab_kib'] * 1024 / n / 2:,.0f} B; {kernel['tcp_pages']} pages |")
print(f"| Handshakes/s ({hs['concurrency']} in flight, {hs['elapsed_s']:.0f} s) | "
      f"{hs['handshakes_per_s']:,.0f} (relay CPU {hs['relay_cpu_us_per_handshake']:.0f} µs each, "
      f"p50 {hs['latency_us']['p50']:,} µs, {hs['errors']} errors) |")
capped = json.load(open(sys.argv[3]))
print(f"| Handshakes/s with `limits.max_connections: 2000` | {capped['handshakes_per_s']:,.0f} "
      f"(relay CPU {capped['relay_cpu_us_per_handshake']:.0f} µs each, "
      f"p50 {capped['latency_us']['p50']:,} µs, {capped['errors']} errors) |")
for path, alg in zip(sys.argv[4:], ("HS256", "RS256 (2048-bit)", "ES256")):
    r = json.load(open(path))
    print(f"| Handshakes/s with an {alg} JWT | {r['handshakes_per_s']:,.0f} (relay CPU "
          f"{r['relay_cpu_us_per_handshake']:.0f} µs each, p50 {r['latency_us']['p50']:,} µs, "
          f"{r['errors']} errors) |")
PY
