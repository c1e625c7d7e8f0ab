"""Who gets in: allowed origins and the connection limit."""

import unittest

import websockets

from relay_harness import RelayTestCase, closed_with, metric, request

GOOD = "https://app.example.com"


class OriginTest(RelayTestCase):
    async def asyncSetUp(self):
        self.relay = await self.start_relay(
            {"websocket.allowed_origins": [GOOD, "http://localhost:3000"]})

    async def test_disallowed_origin_is_closed_with_1008(self):
        async with self.relay.ws_connect(origin="https://evil.example.net") as ws:
            code, frames = await closed_with(ws)
            self.assertEqual(1008, code)
            self.assertEqual([], frames)
        series = await self.relay.wait_metric(
            lambda s: metric(s, "wsrelay_disconnects_total", code="1008") >= 1,
            what="disconnects{code=1008} >= 1")
        self.assertGreaterEqual(metric(series, "wsrelay_handshakes_total", result="origin"), 1)

    async def test_allowed_origins_work(self):
        for origin in (GOOD, "http://localhost:3000"):
            async with self.relay.ws_connect(origin=origin) as ws:
                self.assertEqual({"op": "pong", "id": 1},
                                 await request(ws, {"op": "ping", "id": 1}))
        series = await self.relay.ametrics()
        self.assertEqual(0, metric(series, "wsrelay_handshakes_total", result="origin"))
        self.assertGreaterEqual(metric(series, "wsrelay_handshakes_total", result="ok"), 2)


class ConnectionLimitTest(RelayTestCase):
    async def test_over_the_limit_is_closed_with_1013(self):
        relay = await self.start_relay({"limits.max_connections": 2})
        first = await relay.ws_connect()
        second = await relay.ws_connect()
        try:
            for ws in (first, second):
                self.assertEqual({"op": "pong", "id": 1},
                                 await request(ws, {"op": "ping", "id": 1}))
            async with relay.ws_connect() as third:
                code, frames = await closed_with(third)
                self.assertEqual(1013, code)
                self.assertEqual([], frames)
            series = await relay.wait_metric(
                lambda s: metric(s, "wsrelay_disconnects_total", code="1013") >= 1,
                what="disconnects{code=1013} >= 1")
            self.assertGreaterEqual(metric(series, "wsrelay_handshakes_total", result="limit"), 1)
            # The two admitted clients were not disturbed.
            for ws in (first, second):
                self.assertEqual({"op": "pong", "id": 2},
                                 await request(ws, {"op": "ping", "id": 2}))

            # A slot freed is a slot available.
            await first.close()
            await relay.wait_metric(lambda s: metric(s, "wsrelay_connections") == 1,
                                    what="connections == 1 after a client left")
            async with relay.ws_connect() as again:
                self.assertEqual({"op": "pong", "id": 3},
                                 await request(again, {"op": "ping", "id": 3}))
        finally:
            await first.close()
            await second.close()

    async def test_open_file_limit_follows_the_connection_limit(self):
        # The soft RLIMIT_NOFILE sizes a table libwebsockets scans on every new connection, so the
        # relay sets it from limits.max_connections rather than raising it to the hard limit.
        relay = await self.start_relay({"limits.max_connections": 100, "workers": 2,
                                        "hook.max_connections": 16})
        with open(f"/proc/{relay.proc.pid}/limits") as f:
            row = next(line for line in f if line.startswith("Max open files")).split()
        soft, hard = int(row[3]), int(row[4])
        # 100 connections, a quarter more, 64 for the process, (8 + 16) per worker.
        self.assertEqual(min(hard, 100 + 25 + 64 + 2 * 24), soft)
        series = await relay.ametrics()
        self.assertEqual(soft, metric(series, "wsrelay_process_max_fds"))

    async def test_limited_client_cannot_use_the_connection(self):
        relay = await self.start_relay({"limits.max_connections": 1})
        async with relay.ws_connect() as first:
            async with relay.ws_connect() as second:
                try:
                    await second.send('{"op":"ping","id":1}')
                except websockets.ConnectionClosed:
                    pass
                code, frames = await closed_with(second)
                self.assertEqual(1013, code)
                self.assertEqual([], frames)
            self.assertEqual({"op": "pong", "id": 1},
                             await request(first, {"op": "ping", "id": 1}))


if __name__ == "__main__":
    unittest.main()
