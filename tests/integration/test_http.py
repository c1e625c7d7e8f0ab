"""Plain HTTP on the WebSocket port: probes, metrics, and what is not a WebSocket."""

import asyncio
import json
import socket
import struct
import unittest

from relay_harness import (RelayTestCase, metric, parse_metrics, ping_barrier, recv_json,
                           send_json, subscribe)

FAMILIES = [
    "wsrelay_connections",
    "wsrelay_handshakes_total",
    "wsrelay_messages_received_total",
    "wsrelay_messages_sent_total",
    "wsrelay_received_bytes_total",
    "wsrelay_sent_bytes_total",
    "wsrelay_subscriptions",
    "wsrelay_channels",
    "wsrelay_dropped_messages_total",
    "wsrelay_disconnects_total",
    "wsrelay_build_info",
]


class HttpTest(RelayTestCase):
    async def asyncSetUp(self):
        self.relay = await self.start_relay()

    async def test_healthz(self):
        status, _, _ = await self.relay.ahttp_get("/healthz")
        self.assertEqual(200, status)

    async def test_readyz_when_ready(self):
        status, headers, body = await self.relay.ahttp_get("/readyz")
        self.assertEqual(200, status, body)
        self.assertIn("application/json", headers.get("content-type", ""))
        self.assertIs(True, json.loads(body)["ready"])

    async def test_plain_get_on_the_websocket_path_is_426(self):
        status, headers, _ = await self.relay.ahttp_get("/ws")
        self.assertEqual(426, status)
        # The client is told what to upgrade to.
        self.assertIn("websocket", headers.get("upgrade", "").lower())

    async def test_request_heads_cut_short_leave_the_server_serving(self):
        # A client that sends part of a request head and goes away, politely or with a reset,
        # must cost nothing but its own connection.
        partial = [b"GET /ws?channel=x HTTP/1.1\r\nHost: x\r\nUpgr", b"GET /ws HTTP/1.1\r\n",
                   b"GE", b"POST /api/publish HTTP/1.1\r\nContent-Length: 10\r\n\r\n{\"a\""]
        for reset in (False, True):
            for head in partial * 5:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.relay.port)
                writer.write(head)
                await writer.drain()
                if reset:
                    writer.get_extra_info("socket").setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.close()
                await writer.wait_closed()
        status, _, _ = await self.relay.ahttp_get("/healthz")
        self.assertEqual(200, status)
        async with self.relay.ws_connect() as ws:
            await subscribe(ws, "still:here", id=1)
            self.assertEqual([], await ping_barrier(ws))

    async def test_unknown_path_is_404(self):
        for path in ("/nope", "/ws/extra", "/metricsx", "/"):
            status, _, _ = await self.relay.ahttp_get(path)
            self.assertEqual(404, status, path)

    async def test_websocket_upgrade_on_an_unknown_path_is_404(self):
        status, _, _ = await self.relay.ahttp_get("/elsewhere", headers={
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13",
        })
        self.assertEqual(404, status)
        series = await self.relay.ametrics()
        self.assertEqual(1, metric(series, "wsrelay_handshakes_total", result="path"))
        self.assertEqual(0, metric(series, "wsrelay_handshakes_total", result="ok"))

    async def test_metrics_exposition(self):
        status, headers, body = await self.relay.ahttp_get("/metrics")
        self.assertEqual(200, status)
        self.assertTrue(headers.get("content-type", "").startswith("text/plain"), headers)
        text = body.decode()
        for family in FAMILIES:
            self.assertIn(f"# TYPE {family} ", text, family)
        series = parse_metrics(text)
        self.assertEqual(0, metric(series, "wsrelay_connections"))
        # Every labelled series is present from the start.
        for reason in ("slow_consumer_drop", "slow_consumer_close", "client_gone"):
            self.assertEqual(0, metric(series, "wsrelay_dropped_messages_total", reason=reason))
        for code in ("1000", "1001", "1006", "1009", "4001", "4002", "4500", "other"):
            self.assertEqual(0, metric(series, "wsrelay_disconnects_total", code=code))
        build = [k for k in series if k.startswith("wsrelay_build_info{")]
        self.assertEqual(1, len(build), build)
        self.assertIn('version="', build[0])
        self.assertEqual(1, series[build[0]])

    async def test_counters_move_with_traffic(self):
        relay = self.relay
        before = await relay.ametrics()
        async with relay.ws_connect() as sub, relay.ws_connect() as pub:
            await subscribe(sub, "metrics:chan", id=1)
            for i in range(10):
                await send_json(pub, {"op": "publish", "channel": "metrics:chan", "data": i})
            for i in range(10):
                self.assertEqual(i, (await recv_json(sub))["data"])
            self.assertEqual([], await ping_barrier(sub))

            during = await relay.wait_metric(
                lambda s: metric(s, "wsrelay_messages_sent_total") >= 12,
                what="messages_sent >= 12 (ack, 10 messages, pong)")
            self.assertEqual(2, metric(during, "wsrelay_connections"))
            self.assertEqual(1, metric(during, "wsrelay_subscriptions"))
            self.assertGreaterEqual(metric(during, "wsrelay_channels"), 1)
            self.assertEqual(
                2, metric(during, "wsrelay_handshakes_total", result="ok")
                - metric(before, "wsrelay_handshakes_total", result="ok"))
            received = (metric(during, "wsrelay_messages_received_total")
                        - metric(before, "wsrelay_messages_received_total"))
            self.assertEqual(12, received)  # subscribe, 10 publishes, ping
            self.assertGreater(metric(during, "wsrelay_received_bytes_total"),
                               metric(before, "wsrelay_received_bytes_total") + 10 * 40)
            self.assertGreater(metric(during, "wsrelay_sent_bytes_total"),
                               metric(before, "wsrelay_sent_bytes_total") + 10 * 40)

        after = await relay.wait_metric(
            lambda s: metric(s, "wsrelay_connections") == 0
            and metric(s, "wsrelay_disconnects_total", code="1000") >= 2,
            what="both clients gone with 1000")
        self.assertEqual(0, metric(after, "wsrelay_subscriptions"))
        self.assertEqual(0, metric(after, "wsrelay_channels"))


if __name__ == "__main__":
    unittest.main()
