"""SIGTERM: not ready at once, every client told to reconnect and closed with 1001, spread over
drain.window_ms, then exit 0."""

import asyncio
import json
import signal
import time
import unittest

import websockets

from relay_harness import RelayTestCase, closed_with, metric, recv_json, request, subscribe

CLIENTS = 20
WINDOW_MS = 1000


class DrainTest(RelayTestCase):
    async def test_sigterm_drains_every_client_and_exits_0(self):
        relay = await self.start_relay({"drain.window_ms": WINDOW_MS})
        clients = [await relay.ws_connect() for _ in range(CLIENTS)]
        try:
            for ws in clients:
                await subscribe(ws, "drain:test", id=1)

            first_reconnect = asyncio.Event()
            outcomes = []

            async def follow(ws):
                frame = await recv_json(ws, timeout=WINDOW_MS / 1000 + 10)
                reconnect_at = time.monotonic()
                first_reconnect.set()
                try:
                    extra = await asyncio.wait_for(ws.recv(), WINDOW_MS / 1000 + 10)
                    self.fail(f"frame after reconnect: {extra!r}")
                except websockets.ConnectionClosed:
                    closed_at = time.monotonic()
                await asyncio.wait_for(ws.wait_closed(), 10)
                outcomes.append((frame, ws.close_code, reconnect_at, closed_at))

            tasks = [asyncio.create_task(follow(ws)) for ws in clients]
            sent_at = time.monotonic()
            relay.signal(signal.SIGTERM)

            await asyncio.wait_for(first_reconnect.wait(), WINDOW_MS / 1000 + 10)
            status, _, body = await relay.ahttp_get("/readyz")
            self.assertEqual(503, status, body)
            self.assertEqual({"ready": False, "reason": "draining"}, json.loads(body))
            still_open = sum(1 for ws in clients if ws.open)

            await asyncio.wait_for(asyncio.gather(*tasks), WINDOW_MS / 1000 + 20)
            # Every client: the advice, then 1001.
            self.assertEqual(CLIENTS, len(outcomes))
            for frame, code, _, _ in outcomes:
                self.assertEqual({"op": "reconnect"}, frame)
                self.assertEqual(1001, code)

            closes = sorted(closed_at - sent_at for _, _, _, closed_at in outcomes)
            # Spread over the window rather than all at once (20 uniform draws over 1 s span far
            # more than 0.2 s), and finished about when the window ends.
            self.assertGreater(closes[-1] - closes[0], 0.2, closes)
            self.assertLess(closes[-1], WINDOW_MS / 1000 + 3, closes)
            self.assertGreater(still_open, 0, "every client closed before /readyz answered")

            code = await asyncio.to_thread(relay.wait, 10)
            self.assertEqual(0, code, relay.log())
        finally:
            for ws in clients:
                await ws.close()

    async def test_probes_and_gauges_while_draining(self):
        relay = await self.start_relay({"drain.window_ms": 3000})
        clients = [await relay.ws_connect() for _ in range(5)]
        try:
            for ws in clients:
                self.assertEqual({"op": "pong", "id": 1},
                                 await request(ws, {"op": "ping", "id": 1}))
            status, _, _ = await relay.ahttp_get("/readyz")
            self.assertEqual(200, status)
            series = await relay.ametrics()
            self.assertEqual((0, 1), (series["wsrelay_draining"], series["wsrelay_ready"]))

            relay.signal(signal.SIGTERM)
            # The first advice: readiness has turned by then, and the other clients (closed at
            # random points of a 3 s window) keep the server up while we look.
            first = asyncio.create_task(recv_json(clients[0], timeout=10))
            others = [asyncio.create_task(recv_json(ws, timeout=10)) for ws in clients[1:]]
            done, _ = await asyncio.wait([first, *others], timeout=10,
                                         return_when=asyncio.FIRST_COMPLETED)
            self.assertTrue(done, "no reconnect advice within 10 s")
            self.assertEqual({"op": "reconnect"}, done.pop().result())
            status, _, body = await relay.ahttp_get("/readyz")
            self.assertEqual(503, status, body)
            self.assertEqual({"ready": False, "reason": "draining"}, json.loads(body))
            status, _, _ = await relay.ahttp_get("/healthz")
            self.assertEqual(200, status)
            series = await relay.ametrics()
            self.assertEqual((1, 0), (series["wsrelay_draining"], series["wsrelay_ready"]))

            # A connection opened while draining is sent away at once.
            async with relay.ws_connect() as late:
                code, frames = await closed_with(late)
                self.assertEqual(1001, code)
                self.assertIn(frames, ([], ['{"op":"reconnect"}']))
            series = await relay.ametrics()
            self.assertGreaterEqual(
                metric(series, "wsrelay_handshakes_total", result="draining"), 1)

            for task in (first, *others):
                self.assertEqual({"op": "reconnect"}, await task)
            for ws in clients:
                with self.assertRaises(websockets.ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 10)
                self.assertEqual(1001, ws.close_code)
        finally:
            for ws in clients:
                await ws.close()
        self.assertEqual(0, await asyncio.to_thread(relay.wait, 10))

    async def test_sigterm_without_clients_exits_promptly(self):
        relay = await self.start_relay({"drain.window_ms": 60000})
        started = time.monotonic()
        relay.signal(signal.SIGTERM)
        self.assertEqual(0, await asyncio.to_thread(relay.wait, 10))
        # Nothing to drain: no reason to sit out the window.
        self.assertLess(time.monotonic() - started, 5)


if __name__ == "__main__":
    unittest.main()
