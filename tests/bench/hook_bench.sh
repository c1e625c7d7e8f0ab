#!/usr/bin/env bash
# The HTTP hook's cost: the same fan-out through the broker directly and through the hook
# (client publish -> relay -> app -> publish -> relay -> subscribers), with tests/bench/hook_echo.js
# as the app. Usage: tests/bench/hook_bench.sh [BUILD_DIR]. Starts and stops (by PID) its own
# relay and app on 127.0.0.1; prints a markdown table.
set -euo pipefail

build=${1:-build}
relay_bin=$build/relay/wsrelay
loadgen=$build/tests/bench/wsrelay_loadgen
port=${WSRELAY_BENCH_PORT:-18090}
hook_port=$((port + 1))
py=/usr/bin/python3
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d /tmp/wsrelay-hookbench.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

node "$here/hook_echo.js" "$hook_port" >"$work/hook.log" &
pids+=($!)
cat >"$work/relay.yaml" <<YAML
listen: {host: 127.0.0.1, port: $port}
workers: 2
drain: {window_ms: 0}
log: {level: warn}
hook:
  url: http://127.0.0.1:$hook_port/hook
  events: [message]
  routes: ["hooked*=hook"]
# One publisher at 500/s and 32 sends in flight per connection: far above what one client may
# send (limits.rate); this measures the hook path, not the rate limits.
limits:
  rate: {publish_per_second: 0, send_per_second: 0}
YAML
"$relay_bin" --config "$work/relay.yaml" 2>"$work/relay.log" &
relay_pid=$!
pids+=($relay_pid)
for _ in $(seq 100); do
    grep -q listening "$work/hook.log" 2>/dev/null && grep -q "wsrelay ready" "$work/relay.log" 2>/dev/null && break
    sleep 0.1
done

run() {
    local name=$1 channel=$2
    "$loadgen" fanout --url "ws://127.0.0.1:$port/ws" --subscribers 100 --channel "$channel" \
        --rate 500 --duration 10 --size 64 --timeout 60 --relay-pid "$relay_pid" >"$work/$name.json"
}
run direct bench
run hooked hooked

# Saturation: 16 connections keep 32 `send` RPCs each in flight for 5 s; every reply is counted.
$py - "$port" "$relay_pid" >"$work/rpc.json" <<'PY'
import asyncio, json, sys, time, websockets
port, relay_pid = int(sys.argv[1]), int(sys.argv[2])
def cpu():
    f = open(f"/proc/{relay_pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / 100
async def client(deadline, counts):
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
        n = 0
        for _ in range(32):
            n += 1
            await ws.send(json.dumps({"op": "send", "data": n, "id": n}))
        while time.monotonic() < deadline:
            reply = json.loads(await ws.recv())
            assert reply["op"] == "reply", reply
            counts.append(1)
            n += 1
            await ws.send(json.dumps({"op": "send", "data": n, "id": n}))
async def main():
    counts, c0, t0 = [], cpu(), time.monotonic()
    await asyncio.gather(*(client(t0 + 5, counts) for _ in range(16)))
    elapsed = time.monotonic() - t0
    print(json.dumps({"rps": len(counts) / elapsed, "relay_cpu_us": (cpu() - c0) * 1e6 / len(counts)}))
asyncio.run(main())
PY
$py - "$work/direct.json" "$work/hooked.json" "$work/rpc.json" <<'PY'
import json, sys
print("| Path | Deliveries/s | Loss | p50 / p99 / p999 (µs) | Relay CPU µs/delivery |")
print("|---|---:|---:|---:|---:|")
for label, path in (("client → broker → 100 subscribers", sys.argv[1]),
                    ("client → relay → hook app → broker → 100 subscribers", sys.argv[2])):
    r = json.load(open(path))
    l = r["latency_us"]
    print(f"| {label} | {r['delivered_per_s']:,.0f} | {r['loss']} | {l['p50']:,} / {l['p99']:,} / "
          f"{l['p999']:,} | {r.get('relay_cpu_us_per_delivery', float('nan')):.2f} |")
rpc = json.load(open(sys.argv[3]))
print(f"\nHook round trips (`send` → app → `reply`, 16 connections × 32 in flight, 5 s): "
      f"{rpc['rps']:,.0f}/s, relay CPU {rpc['relay_cpu_us']:.0f} µs each")
PY
