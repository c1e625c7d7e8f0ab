#!/usr/bin/env bash
# Starts one comparison server for the benchmark, in the background, on 127.0.0.1:PORT with its
# Redis at 127.0.0.1:REDIS_PORT (see README.md):
#   tests/bench/peers/start.sh KIND PORT REDIS_PORT WORKDIR
# KIND: node go nchan floor wsrelay, or wsrelay-presence (wsrelay with presence on every channel:
# the cost of the feature, side by side with wsrelay).
# Waits (at most 15 s) until the server answers a WebSocket upgrade on /ws with 101, then prints
#   cpu=PID[,PID...] stop=PID
# cpu: the processes whose CPU time is the server's; stop: the PID to give stop.sh. The server's
# output goes to WORKDIR/KIND-PORT.log. Binaries come from $WSRELAY_BUILD (default
# the checkout's build/): relay/wsrelay, tests/bench/wsrelay_bench_floor, tests/bench/wsrelay_bench_go
# (setup.sh builds the last). wsrelay runs with $WSRELAY_BENCH_WORKERS workers (default 1).
set -euo pipefail

if (($# != 4)); then
    echo "usage: start.sh node|go|nchan|floor|wsrelay|wsrelay-presence PORT REDIS_PORT WORKDIR" >&2
    exit 2
fi
kind=$1
port=$2
redis_port=$3
work=$4
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
build=${WSRELAY_BUILD:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/build}
py=/usr/bin/python3

mkdir -p "$work"
work="$(cd "$work" && pwd)"
log="$work/$kind-$port.log"
ulimit -n "$(ulimit -Hn)"

need() {
    [[ -x $1 ]] || { echo "start.sh: $1 is missing (${2})" >&2; exit 2; }
}

# Each server is detached from our stdout so that $(start.sh ...) returns once we print.
case $kind in
    node)
        [[ -d $here/node/node_modules ]] || { echo "start.sh: run setup.sh (npm ci)" >&2; exit 2; }
        PORT=$port REDIS_URL=redis://127.0.0.1:$redis_port \
            node "$here/node/server.js" </dev/null >"$log" 2>&1 &
        ;;
    go)
        bin=$build/tests/bench/wsrelay_bench_go
        need "$bin" "run setup.sh"
        "$bin" -addr "127.0.0.1:$port" -redis "127.0.0.1:$redis_port" </dev/null >"$log" 2>&1 &
        ;;
    floor)
        bin=$build/tests/bench/wsrelay_bench_floor
        need "$bin" "build the target wsrelay_bench_floor"
        "$bin" --port "$port" --redis "127.0.0.1:$redis_port" </dev/null >"$log" 2>&1 &
        ;;
    nchan)
        need /usr/sbin/nginx "run setup.sh"
        dir=$work/nchan-$port
        mkdir -p "$dir"
        : >"$dir/error.log"
        sed -e "s|@WORKDIR@|$dir|g" -e "s|@PORT@|$port|g" -e "s|@REDIS_PORT@|$redis_port|g" \
            -e "s|@NOFILE@|$(ulimit -n)|g" "$here/nchan/nginx.conf.in" >"$dir/nginx.conf"
        /usr/sbin/nginx -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" \
            </dev/null >"$log" 2>&1 &
        ;;
    wsrelay | wsrelay-presence)
        bin=$build/relay/wsrelay
        need "$bin" "build the target wsrelay"
        cat >"$work/wsrelay-$port.yaml" <<YAML
listen:
  host: 127.0.0.1
  port: $port
workers: ${WSRELAY_BENCH_WORKERS:-1}
broker:
  type: redis
  redis:
    url: redis://127.0.0.1:$redis_port/0
drain:
  window_ms: 0
log:
  level: warn
YAML
        if [[ $kind == wsrelay-presence ]]; then
            printf 'channels:\n  - pattern: "*"\n    presence: true\n' >>"$work/wsrelay-$port.yaml"
        fi
        # The relay reads WSRELAY_* as configuration; these two are ours, not its.
        env -u WSRELAY_BUILD -u WSRELAY_BENCH_WORKERS \
            "$bin" --config "$work/wsrelay-$port.yaml" </dev/null >"$log" 2>&1 &
        ;;
    *)
        echo "start.sh: unknown kind '$kind' (node go nchan floor wsrelay wsrelay-presence)" >&2
        exit 2
        ;;
esac
pid=$!

# A 101 to a real upgrade request means the listener, the HTTP parser and the WebSocket layer
# are up; the Redis connection of the peers is made before they listen (nchan: before it upgrades).
upgrades() {
    $py - "$port" <<'PY' 2>/dev/null
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.sendall(b"GET /ws?channel=start-probe HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
          b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
          b"Sec-WebSocket-Version: 13\r\n\r\n")
data = b""
while b"\r\n" not in data:
    chunk = s.recv(1024)
    if not chunk:
        break
    data += chunk
s.close()
sys.exit(0 if data.split(b" ", 2)[1:2] == [b"101"] else 1)
PY
}

ready=0
for _ in $(seq 150); do
    if ! kill -0 "$pid" 2>/dev/null; then
        break
    fi
    if upgrades; then
        ready=1
        break
    fi
    sleep 0.1
done
if ((!ready)); then
    echo "start.sh: $kind on port $port did not come up; its log:" >&2
    cat "$log" >&2
    [[ $kind == nchan ]] && cat "$work/nchan-$port/error.log" >&2 2>/dev/null
    "$here/stop.sh" "$pid" >&2 || true
    exit 1
fi

cpu=$pid
if [[ $kind == nchan ]]; then
    # The master only supervises; the workers do the work.
    cpu="$(pgrep -P "$pid" | paste -sd, -)"
    [[ -n $cpu ]] || { echo "start.sh: no nginx worker under $pid" >&2; exit 1; }
fi
echo "cpu=$cpu stop=$pid"
