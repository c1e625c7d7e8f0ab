"""POST /api/disconnect on a fleet of three relays (2 workers each) sharing one redis-server, with
10,000 client connections spread over them (docs/benchmarks.md "Server API: disconnect").

The connections belong to USERS users (CONNECTIONS / USERS each, round-robin over the relays, so
every user has connections on every instance); each of CALLS calls disconnects one user that has
not been disconnected yet, asked of the relays in turn, so every call closes that user's
connections on all three instances while the other connections stay. Measured per call: the API's
latency (request sent -> answer read: every worker of the fleet acted), and the time until the
user's last connection read its close frame. Users come from HS256 JWTs (auth.jwt.secret).

Run: WSRELAY_BIN=build/relay/wsrelay /usr/bin/python3 tests/bench/fleet_disconnect_bench.py
Environment: WSRELAY_BENCH_CONNECTIONS (10000), WSRELAY_BENCH_USERS (200), WSRELAY_BENCH_CALLS
(200). The load process holds every client socket: its open-file limit is raised to the hard
limit, which must exceed the connection count.
"""

import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import jwt

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from relay_harness import HOST, Relay, RedisServer, redis_overrides  # noqa: E402

SECRET = "fleet-disconnect-bench-secret-0123456789"
API_KEY = "fleet-disconnect-bench-key"
CONNECTIONS = int(os.environ.get("WSRELAY_BENCH_CONNECTIONS", "10000"))
USERS = int(os.environ.get("WSRELAY_BENCH_USERS", "200"))
CALLS = int(os.environ.get("WSRELAY_BENCH_CALLS", "200"))
INSTANCES = 3
CONNECT_PARALLEL = 200


class Client:
    """A bare WebSocket client: the handshake, then it only watches for the close frame."""

    def __init__(self, user):
        self.user = user
        self.closed = asyncio.get_running_loop().create_future()
        self.writer = None

    async def open(self, port, token):
        reader, self.writer = await asyncio.open_connection(HOST, port)
        self.writer.write((f"GET /ws HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                           f"Authorization: Bearer {token}\r\n\r\n").encode())
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            raise RuntimeError(f"handshake refused: {head[:80]!r}")
        asyncio.get_running_loop().create_task(self.watch(reader))

    async def watch(self, reader):
        while True:
            data = await reader.read(4096)
            if not data or b"\x88" in data[:1]:
                break
        if not self.closed.done():
            self.closed.set_result(time.perf_counter())

    def close(self):
        if self.writer is not None:
            self.writer.close()


def caller(ports):
    """The API calls (run as `--caller PORT,PORT,PORT`): first CALLS of /api/channel, the same path
    without touching a connection (the floor the machine gives at the time), then one
    /api/disconnect per user, asked of the relays in turn. Prints the timings as JSON."""
    async def run():
        floor_ms, calls = [], []
        for call in range(CALLS):
            t0 = time.perf_counter()
            status, data = await post(ports[call % len(ports)], "/api/channel",
                                      json.dumps({"channel": "none"}))
            floor_ms.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                raise RuntimeError(f"/api/channel: {status} {data!r}")
        for call in range(min(CALLS, USERS)):
            body = json.dumps({"user": f"user{call}", "code": 4000})
            t0 = time.perf_counter()
            status, data = await post(ports[call % len(ports)], "/api/disconnect", body)
            t1 = time.perf_counter()
            answer = json.loads(data)
            if status != 200 or answer["unanswered"] != 0:
                raise RuntimeError(f"call {call}: {status} {answer}")
            calls.append((t0, t1, answer["affected"]))
        print(json.dumps({"floor_ms": floor_ms, "calls": calls}))
    asyncio.run(run())


async def post(port, path, body):
    """One POST on its own connection (the API closes each): (status, body bytes)."""
    reader, writer = await asyncio.open_connection(HOST, port)
    data = body.encode()
    writer.write((f"POST {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nX-API-Key: {API_KEY}\r\n"
                  f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n")
                 .encode() + data)
    response = await reader.read()  # to EOF: connection: close
    writer.close()
    head, _, payload = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), payload


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


async def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < CONNECTIONS + 100:
        raise SystemExit(f"open-file limit {hard} is below {CONNECTIONS} connections")
    redis = RedisServer()
    redis.start()
    overrides = redis_overrides(redis, {
        "workers": 2, "api.key": API_KEY, "auth.enabled": True, "auth.jwt.secret": SECRET,
        "limits.max_connections": CONNECTIONS, "limits.connections_per_ip": 0,
        "limits.handshakes_per_ip_per_second": 0, "limits.max_pending_handshakes_per_ip": 0,
        "websocket.ping_interval_ms": 3600000})
    relays = [Relay(overrides, nofile=CONNECTIONS + 1000) for _ in range(INSTANCES)]
    clients = []
    try:
        for relay in relays:
            relay.start()
        tokens = [jwt.encode({"sub": f"user{u}", "exp": int(time.time()) + 3600}, SECRET,
                             algorithm="HS256") for u in range(USERS)]
        by_user = {u: [] for u in range(USERS)}
        gate = asyncio.Semaphore(CONNECT_PARALLEL)

        async def connect(i):
            user = i % USERS
            client = Client(user)
            async with gate:
                await client.open(relays[(i // USERS) % INSTANCES].port, tokens[user])
            by_user[user].append(client)
            clients.append(client)

        started = time.perf_counter()
        await asyncio.gather(*(connect(i) for i in range(CONNECTIONS)))
        print(f"{CONNECTIONS} connections of {USERS} users on {INSTANCES} relays "
              f"in {time.perf_counter() - started:.1f} s")

        # The calls come from a process of their own, so that this one's work on the closes it
        # reads does not delay reading the answers. Its clock (CLOCK_MONOTONIC) is this one's.
        ports = ",".join(str(r.port) for r in relays)
        done = await asyncio.to_thread(
            subprocess.run, [sys.executable, os.path.abspath(__file__), "--caller", ports],
            capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"caller failed:\n{done.stdout}{done.stderr}")
        result = json.loads(done.stdout)
        floor_ms = result["floor_ms"]
        api_ms, closed_ms, affected = [], [], []
        for user, (t0, t1, count) in enumerate(result["calls"]):
            last = max([await c.closed for c in by_user[user]])
            api_ms.append((t1 - t0) * 1000)
            closed_ms.append((last - t0) * 1000)
            affected.append(count)

        def row(name, values):
            print(f"{name}: p50 {percentile(values, 50):.2f} ms, p99 {percentile(values, 99):.2f}"
                  f" ms, max {max(values):.2f} ms, mean {statistics.mean(values):.2f} ms")

        print(f"{len(api_ms)} calls, {statistics.mean(affected):.0f} connections affected each "
              f"(on {INSTANCES} relays), {CONNECTIONS} connections open at the start")
        row("/api/channel (no connection touched)", floor_ms)
        row("API answer (every worker acted)", api_ms)
        row("last close frame read by the client", closed_ms)
    finally:
        for client in clients:
            client.close()
        for relay in relays:
            relay.close()
        redis.close()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--caller":
        caller([int(p) for p in sys.argv[2].split(",")])
    else:
        asyncio.run(main())
