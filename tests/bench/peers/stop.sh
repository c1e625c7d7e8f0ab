#!/usr/bin/env bash
# Stops a server that start.sh started: tests/bench/peers/stop.sh STOP_PID
# SIGTERM, then up to 10 s for it to exit, then SIGKILL (to it and to the children it had, which
# for nginx are the workers). Refuses a PID that is not one of the peers' programs.
set -euo pipefail

if (($# != 1)) || [[ ! $1 =~ ^[0-9]+$ ]]; then
    echo "usage: stop.sh STOP_PID" >&2
    exit 2
fi
pid=$1

# exited PID: true when the process is gone or only a zombie waiting for its parent.
exited() {
    local state
    state="$(sed -n 's/^[0-9]* (.*) \([A-Z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null || true)"
    [[ -z $state || $state == Z ]]
}

if exited "$pid"; then
    exit 0
fi
cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
case $cmdline in
    *peers/node/server.js* | *wsrelay_bench_go* | *wsrelay_bench_floor* | *relay/wsrelay\ --config* | \
        nginx:\ master\ process*/nchan-*) ;;
    *)
        echo "stop.sh: $pid ($cmdline) is not a server start.sh starts; not stopping it" >&2
        exit 1
        ;;
esac

mapfile -t children < <(pgrep -P "$pid" || true)
kill -TERM "$pid" 2>/dev/null || true
for _ in $(seq 100); do
    exited "$pid" && exit 0
    sleep 0.1
done
echo "stop.sh: $pid did not exit within 10 s of SIGTERM; killing it" >&2
kill -KILL "$pid" "${children[@]}" 2>/dev/null || true
