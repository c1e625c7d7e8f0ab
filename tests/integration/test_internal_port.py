"""listen.internal_port: /metrics and /api/* answer only on the internal port (404 on listen.port),
WebSocket upgrades only on listen.port (404 on the internal port), /healthz and /readyz on both;
the internal port stays open while the relay drains, and speaks plain HTTP when listen.port
speaks TLS. With the key at 0 everything is on
listen.port, as the other tests check."""

import asyncio
import base64
import http.client
import json
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import unittest

from relay_harness import (HOST, IO_TIMEOUT, RelayTestCase, metric, parse_metrics, recv_json,
                           reserve_port, subscribe)

KEY = "internal-key"


def exchange(port, method, path, body=None, headers=None):
    """One request to 127.0.0.1:`port`; returns (status, body bytes)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=IO_TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def publish(port, channel, data, key=KEY):
    return exchange(port, "POST", "/api/publish", json.dumps({"channel": channel, "data": data}),
                    {"Content-Type": "application/json", "X-API-Key": key})


def upgrade(port, path="/ws"):
    """A WebSocket upgrade request expected to be refused; returns (status, body bytes)."""
    return exchange(port, "GET", path, None, {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
    })


NOT_FOUND = {"error": "not found"}


class InternalPortTest(RelayTestCase):
    async def start_with_internal_port(self, overrides=None):
        """A relay with listen.internal_port on a port reserved like listen.port (the reservation
        is held until the relay listens, so no other test can take it meanwhile)."""
        reservation, port = reserve_port()
        try:
            relay = await self.start_relay({"listen.internal_port": port, "api.key": KEY,
                                            **(overrides or {})})
        finally:
            reservation.close()
        self.assertIn(f"internal_port={port}", relay.log())
        return relay, port

    async def get(self, port, path, headers=None):
        return await asyncio.to_thread(exchange, port, "GET", path, None, headers)

    async def test_metrics_and_api_only_on_the_internal_port(self):
        relay, internal = await self.start_with_internal_port()
        # The public port: as if they did not exist, whatever the method.
        for method, path in [("GET", "/metrics"), ("POST", "/api/publish"),
                             ("POST", "/api/broadcast"), ("POST", "/api/history"),
                             ("GET", "/api/publish"), ("PUT", "/metrics")]:
            status, body = await asyncio.to_thread(exchange, relay.port, method, path, "{}",
                                                   {"X-API-Key": KEY})
            self.assertEqual(404, status, f"{method} {path}: {body!r}")
            self.assertEqual(NOT_FOUND, json.loads(body), f"{method} {path}")
        # The internal port serves them.
        status, body = await self.get(internal, "/metrics")
        self.assertEqual(200, status, body)
        self.assertEqual(0, metric(parse_metrics(body.decode()), "wsrelay_connections"))

        # A publish on the internal port reaches a WebSocket client of the public port.
        async with relay.ws_connect() as ws:
            await subscribe(ws, "news")
            status, body = await asyncio.to_thread(publish, internal, "news", {"n": 1})
            self.assertEqual(200, status, body)
            self.assertEqual({"op": "message", "channel": "news", "data": {"n": 1}},
                             await recv_json(ws))
        # The key is still checked there.
        status, body = await asyncio.to_thread(publish, internal, "news", 1, "wrong")
        self.assertEqual(401, status, body)

    async def test_probes_answer_on_both_ports(self):
        relay, internal = await self.start_with_internal_port()
        for port in (relay.port, internal):
            status, body = await self.get(port, "/healthz")
            self.assertEqual((200, {"status": "ok"}), (status, json.loads(body)), port)
            status, body = await self.get(port, "/readyz")
            self.assertEqual((200, {"ready": True}), (status, json.loads(body)), port)
            status, body = await self.get(port, "/nothing")
            self.assertEqual((404, NOT_FOUND), (status, json.loads(body)), port)

    async def test_the_internal_port_refuses_websocket_upgrades(self):
        relay, internal = await self.start_with_internal_port()
        status, body = await asyncio.to_thread(upgrade, internal)
        self.assertEqual(404, status, body)
        self.assertIn("no WebSocket endpoint on the internal port", json.loads(body)["reason"])
        # A plain GET of the WebSocket path is not the 426 hint there either.
        status, body = await self.get(internal, "/ws")
        self.assertEqual((404, NOT_FOUND), (status, json.loads(body)))
        # The public port still upgrades, and counts the refusal as a path refusal.
        async with relay.ws_connect() as ws:
            await subscribe(ws, "c")
        status, body = await self.get(internal, "/metrics")
        series = parse_metrics(body.decode())
        self.assertEqual(1, metric(series, "wsrelay_handshakes_total", result="path"))
        self.assertEqual(1, metric(series, "wsrelay_handshakes_total", result="ok"))

    async def test_with_auth_the_internal_port_refuses_the_upgrade_before_the_token(self):
        # With auth on, the upgrade gate reads heads itself: same answer, no token asked for.
        relay, internal = await self.start_with_internal_port(
            {"auth.enabled": True, "auth.jwt.secret": "s" * 32})
        status, body = await asyncio.to_thread(upgrade, internal)
        self.assertEqual(404, status, body)
        self.assertIn("no WebSocket endpoint on the internal port", json.loads(body)["reason"])
        status, body = await asyncio.to_thread(upgrade, relay.port)
        self.assertEqual(401, status, body)

    async def test_the_internal_port_is_scraped_while_draining(self):
        relay, internal = await self.start_with_internal_port(
            {"drain.window_ms": 20000, "workers": 1})
        clients = [await relay.ws_connect() for _ in range(3)]
        try:
            relay.signal(signal.SIGTERM)
            await asyncio.to_thread(relay.wait_for_log, "draining 3 connections", IO_TIMEOUT)
            for port in (relay.port, internal):
                status, body = await self.get(port, "/readyz")
                self.assertEqual((503, {"ready": False, "reason": "draining"}),
                                 (status, json.loads(body)), port)
            status, body = await self.get(internal, "/metrics")
            self.assertEqual(200, status, body)
            self.assertEqual(1, metric(parse_metrics(body.decode()), "wsrelay_draining"))
            status, _ = await self.get(relay.port, "/metrics")
            self.assertEqual(404, status)
        finally:
            for ws in clients:
                await ws.close()
        self.assertEqual(0, await asyncio.to_thread(relay.wait, 10), relay.log())

    async def test_with_tls_on_listen_port_the_internal_port_stays_plain_http(self):
        if shutil.which("openssl") is None:
            self.skipTest("openssl is not installed")
        pki = tempfile.mkdtemp(prefix="wsrelay-internal-pki-")
        self.addCleanup(shutil.rmtree, pki, True)
        source = os.environ.get("WSRELAY_SOURCE_DIR",
                                os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
        subprocess.run(["bash", os.path.join(source, "tests", "tls", "make_certs.sh"), pki],
                       check=True, timeout=60, capture_output=True)
        relay, internal = await self.start_with_internal_port({
            "tls.cert_file": os.path.join(pki, "server.crt"),
            "tls.key_file": os.path.join(pki, "server.key")})
        status, body = await self.get(internal, "/metrics")
        self.assertEqual(200, status, body)

        def tls_get(path):
            ctx = ssl.create_default_context(cafile=os.path.join(pki, "ca.crt"))
            conn = http.client.HTTPSConnection(HOST, relay.port, timeout=IO_TIMEOUT, context=ctx)
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                return resp.status, resp.read()
            finally:
                conn.close()

        self.assertEqual(200, (await asyncio.to_thread(tls_get, "/readyz"))[0])
        self.assertEqual(404, (await asyncio.to_thread(tls_get, "/metrics"))[0])


if __name__ == "__main__":
    unittest.main()
