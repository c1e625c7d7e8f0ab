#!/usr/bin/env bash
# usage: run.sh WSRELAY_BINARY [unittest arguments...]
#
# Runs the network fault tests (test_chaos.py) inside a private network and mount namespace, with
# three more network namespaces made there and joined to it by veth pairs:
#
#   wsr-redis  10.200.1.2  <- vr1 == vr0 ->  10.200.1.1  the test's namespace: the relay listens
#   wsr-cut    10.200.2.2  <- vc1 == vc0 ->  10.200.2.1  on 10.200.0.1 (on lo); the test process
#   wsr-keep   10.200.3.2  <- vk1 == vk0 ->  10.200.3.1  and the relay run here
#
# A link is cut by dropping every packet on both of its ends, silently (no RST, no ICMP): the
# `netem loss 100%` qdisc where the kernel has it, otherwise `pfifo limit 0`, a queue that holds
# nothing. Nothing is created on the host: the namespaces live under a tmpfs mounted on /run in
# the private mount namespace and vanish with it. Needs root; without it, or where namespaces,
# veth or tc are unavailable, it says why and exits 77, which CTest reports as skipped.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python=/usr/bin/python3

if [[ "${1:-}" != --inside ]]; then
    binary="${1:?usage: run.sh WSRELAY_BINARY [unittest arguments...]}"
    shift
    if ((EUID != 0)); then
        echo "SKIP: needs root to create network namespaces (unshare --net --mount, ip netns)"
        exit 77
    fi
    for tool in unshare ip tc redis-server; do
        if ! command -v "$tool" >/dev/null; then
            echo "SKIP: $tool is missing (util-linux, iproute2, redis-server)"
            exit 77
        fi
    done
    if ! "$python" -c 'import websockets' 2>/dev/null; then
        echo "SKIP: $python cannot import websockets (python3-websockets)"
        exit 77
    fi
    # Everything the test needs, tried once: a namespace, a veth into it, the drop qdisc.
    probe='mount -t tmpfs tmpfs /run && ip netns add probe &&
           ip link add p0 type veth peer name p1 netns probe &&
           tc qdisc replace dev p0 root pfifo limit 0'
    if ! out="$(unshare --net --mount --propagation private bash -c "$probe" 2>&1)"; then
        echo "SKIP: cannot create network namespaces joined by veth with a drop qdisc: $out"
        exit 77
    fi
    # The whole run, servers included, is bounded below CTest's own timeout.
    exec timeout -k 5 280 unshare --net --mount --propagation private \
        bash "${BASH_SOURCE[0]}" --inside "$binary" "$@"
fi

# Inside the private namespaces from here on.
shift
binary="$1"
shift
mount -t tmpfs tmpfs /run  # ip netns keeps its namespaces here; this mount is ours alone
ip link set lo up
ip addr add 10.200.0.1/32 dev lo

# link NETNS LOCAL_IF PEER_IF N: a veth pair, LOCAL_IF here as 10.200.N.1, PEER_IF in NETNS as
# 10.200.N.2 with a default route back, so that the peer reaches the relay's 10.200.0.1.
link() {
    local ns=$1 local_if=$2 peer_if=$3 n=$4
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip link add "$local_if" type veth peer name "$peer_if" netns "$ns"
    ip addr add "10.200.$n.1/24" dev "$local_if"
    ip -n "$ns" addr add "10.200.$n.2/24" dev "$peer_if"
    ip link set "$local_if" up
    ip -n "$ns" link set "$peer_if" up
    ip -n "$ns" route add default via "10.200.$n.1"
}
link wsr-redis vr0 vr1 1
link wsr-cut vc0 vc1 2
link wsr-keep vk0 vk1 3

# How a link drops: netem where the kernel has it (detected here), else a zero-length pfifo.
if tc qdisc add dev vr0 root netem loss 100% 2>/dev/null; then
    tc qdisc del dev vr0 root
    export WSRELAY_CHAOS_DROP="netem loss 100%"
else
    export WSRELAY_CHAOS_DROP="pfifo limit 0"
fi

cd "$here"
export WSRELAY_BIN="$binary" PYTHONDONTWRITEBYTECODE=1
export PYTHONPATH="$here/../integration${PYTHONPATH:+:$PYTHONPATH}"
exec "$python" -m unittest -v "${@:-test_chaos}"
