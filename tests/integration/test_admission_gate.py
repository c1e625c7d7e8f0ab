"""Admission is decided per request, and everything before the upgrade is bounded.

Each test reproduces one way a client got in where the app said no, or held the relay's
descriptors, against the real binary over real sockets: path spellings, a second request on one
connection, a token planted through a pooling proxy (nginx from Debian, upstream keepalive, as
ingress-nginx renders it), idle half-open sockets, a connect without its disconnect, and
upgrades that are not WebSocket.
"""

import asyncio
import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

import websockets

from auth_tokens import auth_config, claims, shared_keys
from hook_gate_backend import GateBackend
from relay_harness import (HOST, IO_TIMEOUT, RelayTestCase, metric, parse_metrics, read_response,
                           request)

NGINX = "/usr/sbin/nginx"


def upgrade_head(path="/ws", extra=None, omit=()):
    headers = {
        "Host": "relay.test",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
    }
    headers.update(extra or {})
    lines = [f"GET {path} HTTP/1.1"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k not in omit]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def plain_get(path="/healthz"):
    return f"GET {path} HTTP/1.1\r\nHost: relay.test\r\n\r\n".encode()


def exchange(port, data, source=None, timeout=IO_TIMEOUT):
    """Sends `data` on a new connection and reads until the server closes it (or `timeout`);
    returns everything read."""
    with socket.create_connection((HOST, port), timeout=timeout,
                                  source_address=(source, 0) if source else None) as s:
        s.sendall(data)
        return read_to_close(s, timeout)


def read_to_close(s, timeout=IO_TIMEOUT):
    s.settimeout(timeout)
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        out += chunk
    return out


def statuses(raw):
    """The status codes of every HTTP response in `raw`."""
    return [int(line.split()[1]) for line in raw.decode(errors="replace").split("\r\n")
            if line.startswith("HTTP/1.1 ")]


class GateTestCase(RelayTestCase):
    async def hooked_relay(self, policy, extra=None, message="denied by the test backend"):
        """A relay whose connect hook (hook_gate_backend.py) allows or denies every connect."""
        backend = await asyncio.to_thread(GateBackend)
        self.addCleanup(backend.stop)
        if policy == "deny":
            await backend.script("connect", {"deny": {"message": message}})
        config = {"hook.url": backend.url(), "hook.timeout_ms": 2000,
                  "hook.events": ["connect", "disconnect"]}
        config.update(extra or {})
        return backend, await self.start_relay(config)

    @staticmethod
    async def events(backend, kind):
        return [e for e in await backend.events() if e["event"] == kind]


SPELLINGS = ["//ws", "/./ws", "/%77s", "/x/../ws", "/ws/../ws", "//./x/..//ws"]


class PathSpellingTest(GateTestCase):
    async def test_the_connect_hook_decides_every_spelling_of_the_path(self):
        backend, relay = await self.hooked_relay("deny")
        for path in ["/ws"] + SPELLINGS:
            raw = await asyncio.to_thread(exchange, relay.port, upgrade_head(path))
            self.assertEqual([403], statuses(raw), f"{path}: {raw!r}")
        self.assertEqual(1 + len(SPELLINGS), len(await self.events(backend, "connect")))
        # Not the WebSocket path, however spelled: 404, and the app is not asked.
        for path in ["/ws/", "/wsx", "/x/ws", "/%2577s"]:
            raw = await asyncio.to_thread(exchange, relay.port, upgrade_head(path))
            self.assertEqual([404], statuses(raw), f"{path}: {raw!r}")
        self.assertEqual(1 + len(SPELLINGS), len(await self.events(backend, "connect")))

    async def test_the_token_is_required_on_every_spelling(self):
        relay = await self.start_relay(auth_config())
        for path in SPELLINGS:
            raw = await asyncio.to_thread(exchange, relay.port, upgrade_head(path))
            self.assertEqual([401], statuses(raw), f"{path}: {raw!r}")
        token = shared_keys().token(payload=claims())
        for path in SPELLINGS:
            async with websockets.connect(f"ws://{HOST}:{relay.port}{path}",
                                          extra_headers={"Authorization": f"Bearer {token}"},
                                          open_timeout=IO_TIMEOUT) as ws:
                self.assertEqual({"op": "pong", "id": 1}, await request(ws, {"op": "ping", "id": 1}))


class OneRequestPerConnectionTest(GateTestCase):
    async def test_an_upgrade_after_a_keep_alive_request_is_never_served(self):
        backend, relay = await self.hooked_relay("deny")

        def sequential():
            with socket.create_connection((HOST, relay.port), timeout=IO_TIMEOUT) as s:
                s.sendall(plain_get())
                status, headers, _ = read_response(s)
                self.assertEqual(200, status)
                self.assertEqual("close", headers.get("connection"))
                try:
                    s.sendall(upgrade_head())
                except (BrokenPipeError, ConnectionResetError):
                    return b""
                return read_to_close(s)

        rest = await asyncio.to_thread(sequential)
        self.assertEqual([], statuses(rest), rest)
        pipelined = await asyncio.to_thread(exchange, relay.port, plain_get() + upgrade_head())
        self.assertEqual([200], statuses(pipelined), pipelined)
        also_api = await asyncio.to_thread(
            exchange, relay.port, plain_get("/metrics") + upgrade_head() + upgrade_head())
        self.assertEqual([200], statuses(also_api)[:1])
        self.assertNotIn(101, statuses(also_api))
        self.assertEqual([], await self.events(backend, "connect"))

    async def test_pipelined_requests_never_reach_lws_and_never_hang_a_worker(self):
        # Debian's lws 4.1.6 loops forever on a pipelined request with a body that it parses from
        # bytes it already holds; every answer closes the connection, so it never parses one.
        body = json.dumps({"channel": "news", "data": 1}).encode()
        post = (b"POST /api/publish HTTP/1.1\r\nHost: x\r\nX-API-Key: k\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        for config in ({}, auth_config()):
            relay = await self.start_relay({**config, "workers": 1, "api.key": "k"})
            for sent in (post + post, plain_get() + post, plain_get() + plain_get(),
                         b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc" + post):
                raw = await asyncio.to_thread(exchange, relay.port, sent)
                self.assertEqual(1, len(statuses(raw)), raw)
                self.assertIn(b"connection: close", raw.lower())
                # The one worker still serves.
                self.assertEqual(200, (await relay.ahttp_get("/healthz"))[0])


class Nginx:
    """nginx from Debian in front of a relay, with upstream keepalive (ingress-nginx's default
    rendering): one process (master_process off), its own prefix, loopback only."""

    def __init__(self, relay_port):
        self.dir = tempfile.TemporaryDirectory(prefix="wsrelay-nginx-")
        probe = socket.socket()
        probe.bind((HOST, 0))
        self.port = probe.getsockname()[1]
        probe.close()
        d = self.dir.name
        conf = f"""
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' ''; }}
    upstream relay {{ server {HOST}:{relay_port}; keepalive 8; }}
    server {{
        listen {HOST}:{self.port};
        location / {{
            proxy_pass http://relay;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
        }}
    }}
}}
"""
        path = os.path.join(d, "nginx.conf")
        with open(path, "w") as f:
            f.write(conf)
        self.proc = subprocess.Popen([NGINX, "-p", d, "-c", path], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + IO_TIMEOUT
        while True:
            try:
                socket.create_connection((HOST, self.port), timeout=0.5).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    err = self.proc.stderr.read().decode() if self.proc.poll() is not None else ""
                    self.stop()
                    raise AssertionError(f"nginx did not start: {err}")
                time.sleep(0.05)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=IO_TIMEOUT)
        self.dir.cleanup()


class PoolingProxyTest(GateTestCase):
    async def test_a_token_never_outlives_its_request_behind_nginx(self):
        self.assertTrue(os.access(NGINX, os.X_OK), "nginx is missing (tools/dev installs it)")
        keys = shared_keys()
        relay = await self.start_relay(auth_config({"auth.jwt.allow_query_token": True}))
        nginx = await asyncio.to_thread(Nginx, relay.port)
        self.addCleanup(nginx.stop)
        token_a = keys.token(payload=claims(sub="alice", channels=["a:*"]))
        token_b = keys.token(payload=claims(sub="bob", channels=["b:*"]))

        for round_ in range(3):
            # Client A: a plain GET of the WebSocket path with its token as a subprotocol.
            def plant():
                with socket.create_connection((HOST, nginx.port), timeout=IO_TIMEOUT) as s:
                    s.sendall((f"GET /ws HTTP/1.1\r\nHost: relay.test\r\n"
                               f"Sec-WebSocket-Protocol: wsrelay.v1, wsrelay.bearer.{token_a}\r\n"
                               "\r\n").encode())
                    return read_response(s)[0]

            self.assertEqual(426, await asyncio.to_thread(plant))
            # Client B, through the same proxy: authenticated as B, never as A.
            async with websockets.connect(f"ws://{HOST}:{nginx.port}/ws?token={token_b}",
                                          open_timeout=IO_TIMEOUT) as ws:
                self.assertEqual({"op": "ack", "id": 1},
                                 await request(ws, {"op": "subscribe", "channel": "b:1", "id": 1}))
                reply = await request(ws, {"op": "subscribe", "channel": "a:1", "id": 2})
                self.assertEqual(403, reply.get("code"), f"round {round_}: {reply}")
            # A browser-style upgrade after a plain request through the pool: accepted.
            status = await asyncio.to_thread(
                lambda: urllib.request.urlopen(f"http://{HOST}:{nginx.port}/healthz",
                                               timeout=IO_TIMEOUT).status)
            self.assertEqual(200, status)
            async with websockets.connect(f"ws://{HOST}:{nginx.port}/ws",
                                          subprotocols=["wsrelay.v1", f"wsrelay.bearer.{token_a}"],
                                          open_timeout=IO_TIMEOUT) as ws:
                self.assertEqual({"op": "ack", "id": 1},
                                 await request(ws, {"op": "subscribe", "channel": "a:1", "id": 1}))


def idle_sockets(port, count, source=None):
    out = []
    for _ in range(count):
        s = socket.create_connection((HOST, port), timeout=IO_TIMEOUT,
                                     source_address=(source, 0) if source else None)
        out.append(s)
    return out


def closed_by_server(sockets, timeout=IO_TIMEOUT):
    """How many of `sockets` the server closes within `timeout`."""
    deadline = time.monotonic() + timeout
    closed = 0
    for s in sockets:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if s.recv(1) == b"":
                closed += 1
        except ConnectionResetError:
            closed += 1
        except socket.timeout:
            pass
    return closed


class PendingBoundTest(GateTestCase):
    def close_all(self, sockets):
        for s in sockets:
            s.close()

    async def test_idle_sockets_past_the_descriptor_limit_leave_health_answering(self):
        # The report: 300 idle connections against a relay with a 256-descriptor limit.
        for config in ({}, auth_config()):
            relay = await self.start_relay({**config, "workers": 1}, nofile=256)
            idle = await asyncio.to_thread(idle_sockets, relay.port, 300)
            self.addCleanup(self.close_all, idle)
            for _ in range(3):
                status, _, _ = await relay.ahttp_get("/healthz")
                self.assertEqual(200, status)
            series = await relay.ametrics()
            self.assertGreater(metric(series, "wsrelay_pending_closed_total", reason="shed"), 200)
            self.assertLessEqual(metric(series, "wsrelay_pending_connections"), 64)
            self.close_all(idle)

    async def test_the_oldest_is_shed_and_counted(self):
        relay = await self.start_relay({"workers": 1, "limits.max_pending_handshakes": 10})
        idle = await asyncio.to_thread(idle_sockets, relay.port, 30)
        self.addCleanup(self.close_all, idle)
        # Ten, and this scrape's own connection (which shed one more).
        await relay.wait_metric(
            lambda s: metric(s, "wsrelay_pending_closed_total", reason="shed") >= 20 and
            metric(s, "wsrelay_pending_connections") <= 10,
            what="20 shed, 10 pending")
        self.assertEqual(20, await asyncio.to_thread(closed_by_server, idle[:20]))
        self.assertEqual(200, (await relay.ahttp_get("/healthz"))[0])

    async def test_an_address_over_its_bound_is_refused_and_others_are_not(self):
        relay = await self.start_relay({"workers": 1, "limits.max_pending_handshakes_per_ip": 4})
        idle = await asyncio.to_thread(idle_sockets, relay.port, 10)
        self.addCleanup(self.close_all, idle)
        self.assertEqual(6, await asyncio.to_thread(closed_by_server, idle[4:]))
        # Another address is served meanwhile (127.0.0.1 is at its bound, so it asks).
        raw = await asyncio.to_thread(exchange, relay.port, plain_get("/metrics"), "127.0.0.2")
        self.assertEqual([200], statuses(raw))
        series = parse_metrics(raw.split(b"\r\n\r\n", 1)[1].decode())
        self.assertEqual(6, metric(series, "wsrelay_pending_closed_total", reason="per_address"))

    async def test_a_socket_that_sends_nothing_times_out(self):
        for config in ({}, auth_config()):
            relay = await self.start_relay({**config, "limits.handshake_timeout_ms": 300})
            idle = await asyncio.to_thread(idle_sockets, relay.port, 3)
            self.addCleanup(self.close_all, idle)
            self.assertEqual(3, await asyncio.to_thread(closed_by_server, idle))
            # Nothing left pending but the scrape itself (an earlier scrape's connection may
            # not have been seen closing yet).
            await relay.wait_metric(
                lambda s: metric(s, "wsrelay_pending_closed_total", reason="timeout") >= 3 and
                metric(s, "wsrelay_pending_connections") <= 1,
                what="3 timed out, none pending")


class ConnectAndDisconnectTest(GateTestCase):
    async def test_malformed_upgrades_are_refused_before_the_app_hears_of_them(self):
        backend, relay = await self.hooked_relay("allow")
        broken = [
            upgrade_head(omit=("Sec-WebSocket-Key",)),
            upgrade_head(extra={"Sec-WebSocket-Protocol": "chat"}),
            upgrade_head(extra={"Connection": "keep-alive"}),
            upgrade_head(extra={"Upgrade": "h2c"}),
            upgrade_head(extra={"Sec-WebSocket-Protocol": "wsrelay-listener, wsrelay.v1"}),
            upgrade_head(extra={"Sec-WebSocket-Version": "8"}),
        ]
        for head in broken:
            raw = await asyncio.to_thread(exchange, relay.port, head)
            self.assertEqual([400], statuses(raw), f"{head!r}: {raw!r}")
        self.assertEqual([], await self.events(backend, "connect"))
        series = await relay.ametrics()
        self.assertEqual(len(broken), metric(series, "wsrelay_handshakes_total", result="bad_request"))

    async def test_every_connect_the_app_allowed_gets_its_disconnect(self):
        backend, relay = await self.hooked_relay("allow")
        async with relay.ws_connect() as ws:
            self.assertEqual({"op": "pong", "id": 1}, await request(ws, {"op": "ping", "id": 1}))
        # An allowed upgrade whose client vanishes before lws reads it.
        with socket.create_connection((HOST, relay.port), timeout=IO_TIMEOUT) as s:
            s.sendall(upgrade_head())
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        await backend.wait_events(lambda got: sum(e["event"] == "disconnect" for e in got) >= 2,
                                  "two disconnect events")
        connects = {e["connection"] for e in await self.events(backend, "connect")}
        disconnects = {e["connection"] for e in await self.events(backend, "disconnect")}
        self.assertEqual(2, len(connects))
        self.assertEqual(connects, disconnects)


class UpgradeKindTest(GateTestCase):
    async def test_only_websocket_upgrades_and_only_our_protocol(self):
        for config in ({}, auth_config()):
            relay = await self.start_relay(config)
            raw = await asyncio.to_thread(exchange, relay.port,
                                          upgrade_head(extra={"Upgrade": "h2c",
                                                              "HTTP2-Settings": "AAMAAABkAAQAAP__"}))
            self.assertEqual([400], statuses(raw), raw)
            raw = await asyncio.to_thread(
                exchange, relay.port,
                upgrade_head(extra={"Sec-WebSocket-Protocol": "wsrelay-listener"}))
            self.assertNotIn(101, statuses(raw), raw)
        # Without a gate lws answers the upgrade itself: still never one no session owns.
        relay = await self.start_relay()
        with self.assertRaises(Exception):
            async with websockets.connect(relay.ws_uri(), subprotocols=["wsrelay-listener"],
                                          open_timeout=IO_TIMEOUT) as ws:
                await request(ws, {"op": "ping", "id": 1})


class DenyMessageTest(GateTestCase):
    async def test_the_apps_deny_message_is_escaped(self):
        message = 'he said "no"\n<b>\\'
        _, relay = await self.hooked_relay("deny", message=message)
        raw = await asyncio.to_thread(exchange, relay.port, upgrade_head())
        self.assertEqual([403], statuses(raw))
        body = json.loads(raw.split(b"\r\n\r\n", 1)[1])
        self.assertEqual({"error": "forbidden", "reason": message}, body)


if __name__ == "__main__":
    unittest.main()
