"""Per-address limits against the real binary: the handshake rate and the connection cap refuse
with 429 and Retry-After before anything of the connection is decided (the connect hook is never
asked), the cap holds across workers and every close gives its count back, X-Forwarded-For is
believed only from a trusted proxy, and an address that keeps sending wrong API keys is answered
429 without its key being checked.

Limited clients connect from 127.0.0.2 and 127.0.0.3; 127.0.0.1 is exempt, so the harness's own
/readyz and /metrics requests count against nothing.
"""

import asyncio
import base64
import json
import os
import socket
import unittest

from hook_gate_backend import GateBackend
from relay_harness import HOST, IO_TIMEOUT, RelayTestCase, metric, read_response

CLIENT = "127.0.0.2"
OTHER = "127.0.0.3"
KEY = "test-api-key-0123456789"


def upgrade_head(extra=None):
    headers = {
        "Host": "relay.test",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
    }
    headers.update(extra or {})
    lines = ["GET /ws HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def get_head(path="/healthz", extra=None):
    lines = [f"GET {path} HTTP/1.1", "Host: relay.test"]
    lines += [f"{k}: {v}" for k, v in (extra or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def post_head(path, body, key):
    return ("\r\n".join([f"POST {path} HTTP/1.1", "Host: relay.test", f"X-API-Key: {key}",
                         "Content-Type: application/json", f"Content-Length: {len(body)}"])
            + "\r\n\r\n").encode() + body


def connect(port, source):
    s = socket.create_connection((HOST, port), timeout=IO_TIMEOUT, source_address=(source, 0))
    return s


def ask(port, source, data):
    """Sends `data` on a new connection from `source`; returns the one response."""
    with connect(port, source) as s:
        s.sendall(data)
        return read_response(s)


def open_upgrade(port, source, extra=None):
    """An upgrade from `source`: (socket, status, headers); the socket stays open on 101."""
    s = connect(port, source)
    s.sendall(upgrade_head(extra))
    status, headers, _ = read_response(s)
    if status != 101:
        s.close()
        return None, status, headers
    return s, status, headers


def limited(series, limit, result="refused"):
    return metric(series, "wsrelay_ip_limited_total", limit=limit, result=result)


class IpLimitsTestCase(RelayTestCase):
    def base(self, **extra):
        # One worker unless a test says otherwise: the handshake rate is split between workers.
        config = {"workers": 1, "limits.per_ip_exempt": ["127.0.0.1"],
                  "limits.handshakes_per_ip_per_second": 0,
                  "limits.connections_per_ip": 0}
        config.update({k.replace("__", "."): v for k, v in extra.items()})
        return config

    def close_later(self, s):
        if s is not None:
            self.addCleanup(s.close)
        return s

    async def no_entries_left(self, relay):
        await relay.wait_metric(lambda m: metric(m, "wsrelay_ip_table_entries") == 0,
                                what="wsrelay_ip_table_entries back to 0")


class HandshakeRateTest(IpLimitsTestCase):
    async def test_over_the_rate_is_refused_429_before_the_hook_is_asked(self):
        backend = await asyncio.to_thread(GateBackend)
        self.addCleanup(backend.stop)
        config = self.base(limits__handshakes_per_ip_per_second=1,
                           limits__handshakes_per_ip_burst=1)
        config.update({"hook.url": backend.url(), "hook.timeout_ms": 2000,
                       "hook.events": ["connect"]})
        relay = await self.start_relay(config)
        # The address's one token goes to a plain request, which the hook never hears of.
        status, _, _ = await asyncio.to_thread(ask, relay.port, CLIENT, get_head())
        self.assertEqual(200, status)
        status, headers, body = await asyncio.to_thread(ask, relay.port, CLIENT, upgrade_head())
        self.assertEqual(429, status, body)
        self.assertEqual("1", headers.get("retry-after"))
        self.assertIn(b"too many new connections", body)
        self.assertEqual([], await backend.events())  # the app was never asked
        # Another address is not affected, and its upgrade does reach the app.
        s, status, _ = await asyncio.to_thread(open_upgrade, relay.port, OTHER)
        self.close_later(s)
        self.assertEqual(101, status)
        self.assertEqual(["connect"], [e["event"] for e in await backend.events()])
        series = await relay.ametrics()
        self.assertEqual(1, limited(series, "handshake_rate"))

    async def test_a_dry_run_counts_without_refusing(self):
        relay = await self.start_relay(self.base(limits__handshakes_per_ip_per_second=1,
                                                 limits__handshakes_per_ip_burst=1,
                                                 limits__per_ip_dry_run=True))
        for _ in range(3):
            status, _, _ = await asyncio.to_thread(ask, relay.port, CLIENT, get_head())
            self.assertEqual(200, status)
        series = await relay.ametrics()
        self.assertEqual(0, limited(series, "handshake_rate"))
        self.assertGreaterEqual(limited(series, "handshake_rate", "dry_run"), 1)


class ConnectionCapTest(IpLimitsTestCase):
    CAP = 4

    async def test_the_cap_holds_across_workers_and_every_close_gives_its_count_back(self):
        relay = await self.start_relay(self.base(workers=2, limits__connections_per_ip=self.CAP))
        sockets = []
        for i in range(self.CAP):
            s, status, _ = await asyncio.to_thread(open_upgrade, relay.port, CLIENT)
            self.assertEqual(101, status, f"connection {i}")
            sockets.append(self.close_later(s))
        # SO_REUSEPORT spreads them over both workers; the count is one for the instance.
        _, status, headers = await asyncio.to_thread(open_upgrade, relay.port, CLIENT)
        self.assertEqual(429, status)
        self.assertEqual("10", headers.get("retry-after"))
        # Plain HTTP counts too, and is refused the same way.
        status, _, _ = await asyncio.to_thread(ask, relay.port, CLIENT, get_head())
        self.assertEqual(429, status)
        # Another address has its own count.
        s, status, _ = await asyncio.to_thread(open_upgrade, relay.port, OTHER)
        self.assertEqual(101, status)
        s.close()
        series = await relay.ametrics()
        self.assertEqual(2, limited(series, "connections"))
        # One closes: one may open again.
        sockets.pop().close()
        await relay.wait_metric(
            lambda m: metric(m, "wsrelay_connections") == self.CAP - 1,
            what="the closed connection gone")
        s, status, _ = await asyncio.to_thread(open_upgrade, relay.port, CLIENT)
        self.assertEqual(101, status)
        sockets.append(self.close_later(s))
        for s in sockets:
            s.close()
        await self.no_entries_left(relay)

    async def test_no_close_path_leaks_a_count(self):
        relay = await self.start_relay(self.base(workers=2, limits__connections_per_ip=2))

        def connections_that_end_before_a_session():
            # Closed before sending anything, and halfway through a head.
            connect(relay.port, CLIENT).close()
            with connect(relay.port, CLIENT) as s:
                s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\n")
            # Plain HTTP answered, a 404, a malformed request, a refused upgrade.
            for data in (get_head(), get_head("/nothing"), b"NONSENSE\r\n\r\n",
                         upgrade_head({"Sec-WebSocket-Version": "12"})):
                with connect(relay.port, CLIENT) as s:
                    s.sendall(data)
                    s.settimeout(IO_TIMEOUT)
                    try:
                        while s.recv(65536):
                            pass
                    except (ConnectionResetError, socket.timeout):
                        pass

        def sessions_and_a_refusal():
            held = [open_upgrade(relay.port, CLIENT)[0] for _ in range(2)]
            refused = open_upgrade(relay.port, CLIENT)
            for s in held:
                if s is not None:
                    s.close()
            return [s is not None for s in held], refused[1]

        for _ in range(2):
            await asyncio.to_thread(connections_that_end_before_a_session)
            await self.no_entries_left(relay)
            opened, refused = await asyncio.to_thread(sessions_and_a_refusal)
            self.assertEqual([True, True], opened)
            self.assertEqual(429, refused)
            await self.no_entries_left(relay)


class TrustedProxyTest(IpLimitsTestCase):
    async def test_x_forwarded_for_is_believed_from_a_trusted_proxy_only(self):
        relay = await self.start_relay(self.base(limits__handshakes_per_ip_per_second=1,
                                                 limits__handshakes_per_ip_burst=1,
                                                 limits__trusted_proxies=["127.0.0.1"]))

        def status_of(source, forwarded_for):
            return ask(relay.port, source, get_head(extra={"X-Forwarded-For": forwarded_for}))[0]

        # 127.0.0.2 is not a proxy: the header is ignored and its own address is limited.
        self.assertEqual(200, await asyncio.to_thread(status_of, CLIENT, "203.0.113.5"))
        self.assertEqual(429, await asyncio.to_thread(status_of, CLIENT, "203.0.113.6"))
        # 127.0.0.1 is: each client behind it is limited by the address it reports (the
        # rightmost that is not a trusted proxy; the first entry is the client's own claim).
        self.assertEqual(200, await asyncio.to_thread(status_of, HOST, "1.1.1.1, 203.0.113.5"))
        self.assertEqual(429, await asyncio.to_thread(status_of, HOST, "2.2.2.2, 203.0.113.5"))
        self.assertEqual(200, await asyncio.to_thread(status_of, HOST, "203.0.113.6"))
        series = await relay.ametrics()
        self.assertEqual(2, limited(series, "handshake_rate"))


class ApiKeyThrottleTest(IpLimitsTestCase):
    async def test_past_its_failures_an_address_is_answered_429_without_its_key_checked(self):
        relay = await self.start_relay(self.base(workers=1, api__key=KEY,
                                                 limits__api_key_failures_per_ip_per_minute=2))
        body = json.dumps({"channel": "news", "data": {"n": 1}}).encode()
        for _ in range(2):
            status, _, _ = await asyncio.to_thread(
                ask, relay.port, CLIENT, post_head("/api/publish", body, "wrong"))
            self.assertEqual(401, status)
        status, headers, answer = await asyncio.to_thread(
            ask, relay.port, CLIENT, post_head("/api/publish", body, KEY))
        self.assertEqual(429, status, answer)
        self.assertEqual("30", headers.get("retry-after"))
        # Another address, and the exempt backend, are not throttled.
        status, _, _ = await asyncio.to_thread(
            ask, relay.port, OTHER, post_head("/api/publish", body, KEY))
        self.assertEqual(200, status)
        for _ in range(3):
            status, _, _ = await asyncio.to_thread(
                ask, relay.port, HOST, post_head("/api/publish", body, "wrong"))
            self.assertEqual(401, status)
        series = await relay.ametrics()
        self.assertEqual(1, limited(series, "api_key"))


if __name__ == "__main__":
    unittest.main()
