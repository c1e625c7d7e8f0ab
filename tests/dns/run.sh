#!/usr/bin/env bash
# usage: run.sh DNS_TEST_BINARY
#
# Runs the AsyncResolver tests that need a name server (tests/dns/*_dnstest.cc) against
# slow_dns_server.py, inside a private network and mount namespace: there the server owns
# 127.0.0.1:53 and /etc/resolv.conf names it, while the host's network and resolv.conf stay as
# they are. Needs root (unshare --net --mount); without it, or where namespaces are unavailable,
# it says why and exits 77, which CTest reports as skipped (SKIP_RETURN_CODE), never as passed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python=/usr/bin/python3
delay_seconds=2

if [[ "${1:-}" != --inside ]]; then
    binary="${1:?usage: run.sh DNS_TEST_BINARY}"
    if ((EUID != 0)); then
        echo "SKIP: needs root to create a network and mount namespace (unshare --net --mount)"
        exit 77
    fi
    if ! command -v unshare >/dev/null || ! command -v ip >/dev/null; then
        echo "SKIP: unshare (util-linux) or ip (iproute2) is missing"
        exit 77
    fi
    if ! probe="$(unshare --net --mount --propagation private true 2>&1)"; then
        echo "SKIP: cannot create a network and mount namespace: $probe"
        exit 77
    fi
    # The whole run, server included, is bounded below CTest's own timeout.
    exec timeout -k 5 100 unshare --net --mount --propagation private \
        bash "${BASH_SOURCE[0]}" --inside "$binary"
fi

# Inside the namespaces from here on.
binary="$2"
ip link set lo up
work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# timeout:5 is above the server's delay, so a slow answer is waited for; attempts:1 keeps an
# unexpected silence short.
printf 'nameserver 127.0.0.1\noptions timeout:5 attempts:1\n' >"$work/resolv.conf"
mount --bind "$work/resolv.conf" /etc/resolv.conf

mkfifo "$work/ready"
"$python" "$here/slow_dns_server.py" --delay "$delay_seconds" --lifetime 110 >"$work/ready" &
server_pid=$!
if ! read -r -t 10 line <"$work/ready" || [[ "$line" != ready ]]; then
    echo "FAIL: the DNS server did not start" >&2
    exit 1
fi

WSRELAY_SLOW_DNS_DELAY_MS=$((delay_seconds * 1000)) timeout -k 5 90 "$binary" \
    --gtest_filter='AsyncResolverDns.*'
