"""websocket.write_coalesce_ms: a socket written recently takes its next frames in one batch."""

import unittest

from relay_harness import (RelayTestCase, metric, ping_barrier, recv_json, send_json, subscribe)

# The largest window the schema allows: a burst sent right after a write lands well inside it
# however slow the box is, so the assertions below do not depend on timing.
WINDOW_MS = 1000


def message(channel, data):
    return {"op": "message", "channel": channel, "data": data}


class WriteCoalescingTest(RelayTestCase):
    async def test_a_burst_after_a_write_waits_for_the_window_and_leaves_in_one_write(self):
        relay = await self.start_relay({"workers": 1, "websocket.write_coalesce_ms": WINDOW_MS})
        async with relay.ws_connect() as sub, relay.ws_connect() as pub:
            # The subscribe ack is a write: the window starts there.
            await subscribe(sub, "feed", id=1)
            before = metric(await relay.ametrics(), "wsrelay_socket_writes_total")
            for n in range(20):
                await send_json(pub, {"op": "publish", "channel": "feed", "data": n})
            for n in range(20):
                self.assertEqual(message("feed", n), await recv_json(sub))
            series = await relay.ametrics()
            # Whole, in order, in one write, and held until the window ended (not sent at once).
            self.assertEqual(1, metric(series, "wsrelay_socket_writes_total") - before)
            self.assertEqual(20, metric(series, "wsrelay_delivery_latency_seconds_count"))
            self.assertEqual(0, metric(series, "wsrelay_delivery_latency_seconds_bucket",
                                       le="0.25"))
            self.assertEqual([], await ping_barrier(sub))

    async def test_zero_writes_every_turn(self):
        relay = await self.start_relay({"workers": 1, "websocket.write_coalesce_ms": 0})
        async with relay.ws_connect() as sub, relay.ws_connect() as pub:
            await subscribe(sub, "feed", id=1)
            before = metric(await relay.ametrics(), "wsrelay_socket_writes_total")
            # One message at a time, each read before the next is sent: one write each.
            for n in range(5):
                await send_json(pub, {"op": "publish", "channel": "feed", "data": n})
                self.assertEqual(message("feed", n), await recv_json(sub))
            series = await relay.ametrics()
            self.assertEqual(5, metric(series, "wsrelay_socket_writes_total") - before)

    async def test_a_client_that_leaves_with_held_frames_costs_nobody_else(self):
        relay = await self.start_relay({"workers": 1, "websocket.write_coalesce_ms": WINDOW_MS})
        async with relay.ws_connect() as stay, relay.ws_connect() as pub:
            leave = await relay.ws_connect()
            await subscribe(stay, "feed", id=1)
            await subscribe(leave, "feed", id=1)
            # Both sockets were just written (their acks) and hold this burst for the window; one
            # of them goes away meanwhile.
            for n in range(1, 11):
                await send_json(pub, {"op": "publish", "channel": "feed", "data": n})
            leave.transport.abort()
            await relay.wait_metric(lambda s: metric(s, "wsrelay_connections") == 2,
                                    what="the aborted client closed")
            for n in range(1, 11):
                self.assertEqual(message("feed", n), await recv_json(stay))
            self.assertEqual([], await ping_barrier(stay))


if __name__ == "__main__":
    unittest.main()
