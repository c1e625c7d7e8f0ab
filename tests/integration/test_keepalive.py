"""Server pings: a client that never answers is closed with 4002; one that answers stays."""

import asyncio
import time
import unittest

from relay_harness import RelayTestCase, metric, request

INTERVAL_MS = 1000
PONG_TIMEOUT_MS = 500


class KeepaliveTest(RelayTestCase):
    async def test_unanswered_pings_close_with_4002(self):
        relay = await self.start_relay({
            "websocket.ping_interval_ms": INTERVAL_MS,
            "websocket.pong_timeout_ms": PONG_TIMEOUT_MS,
        })
        # A websockets client answers pings itself; its own pings are off so that only the
        # server's keep the connection alive.
        async with relay.ws_connect(ping_interval=None) as good:
            answering = await relay.raw_connect()
            silent = await relay.raw_connect()
            try:
                for raw in (answering, silent):
                    await raw.send_json({"op": "ping", "id": 1})
                    self.assertEqual({"op": "pong", "id": 1}, await raw.recv_json())

                # The answering client must answer while we wait on the silent one.
                answer = asyncio.create_task(
                    answering.wait_pings(4, timeout=10 * INTERVAL_MS / 1000))
                closed = await silent.wait_closed(timeout=10 * INTERVAL_MS / 1000)
                closed_at = time.monotonic()
                self.assertEqual(4002, closed.code, closed)
                self.assertGreaterEqual(silent.pings, 1)
                # Closed no sooner than the pong timeout after the (last) ping.
                self.assertGreaterEqual(closed_at - silent.ping_times[-1],
                                        PONG_TIMEOUT_MS / 1000 * 0.9)

                # The answering client sees ping after ping, several intervals, and stays.
                await answer
                gaps = [b - a for a, b in zip(answering.ping_times, answering.ping_times[1:])]
                self.assertTrue(all(g > INTERVAL_MS / 1000 * 0.5 for g in gaps), gaps)
                await answering.send_json({"op": "ping", "id": 2})
                self.assertEqual({"op": "pong", "id": 2},
                                 await answering.recv_json(answer_pings=True))
                self.assertEqual({"op": "pong", "id": 3},
                                 await request(good, {"op": "ping", "id": 3}))
                self.assertTrue(good.open)
            finally:
                await answering.close()
                await silent.close()

        series = await relay.wait_metric(
            lambda s: metric(s, "wsrelay_disconnects_total", code="4002") >= 1,
            what="disconnects{code=4002} >= 1")
        self.assertEqual(1, metric(series, "wsrelay_disconnects_total", code="4002"))


if __name__ == "__main__":
    unittest.main()
