"""A subscriber that stops reading is closed (4001) without holding back the others."""

import asyncio
import json
import unittest

from relay_harness import (Closed, RelayTestCase, UNMETERED, metric, ping_barrier, send_json,
                           subscribe)

PAD = "x" * 4000


def kernel_send_buffer_max():
    """The most a socket's send buffer autotunes to: what the kernel may hold for a client that
    stopped reading before the relay's own queue sees anything."""
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as f:
            return int(f.read().split()[2])
    except (OSError, ValueError, IndexError):
        return 4 << 20


# Bounded bursts, well past what the kernel can absorb (3x and 2x its maximum; 12 and 8 MB with
# Linux's default 4 MB).
BURST = max(3000, 3 * kernel_send_buffer_max() // 4096)
DROP_BURST = max(2000, 2 * kernel_send_buffer_max() // 4096)
WINDOW = 8  # publishes ahead of the fast subscriber: 32 KB, well under its 64 KB send queue


class SlowConsumerTest(RelayTestCase):
    relay_defaults = UNMETERED

    async def test_slow_consumer_is_closed_and_fast_one_gets_everything(self):
        relay = await self.start_relay({
            "limits.send_queue_bytes": 65536,
            "websocket.max_message_bytes": 16384,  # at most the queue less a frame header
            "limits.slow_consumer": "close",
        })

        # The slow client: a tiny receive buffer, subscribed, then never reads.
        slow = await relay.raw_connect(rcvbuf=4096)
        await slow.send_json({"op": "subscribe", "channel": "firehose", "id": 1})
        self.assertEqual({"op": "ack", "id": 1}, await slow.recv_json())
        slow.pause_reading()

        async with relay.ws_connect() as fast, relay.ws_connect() as pub:
            await subscribe(fast, "firehose", id=1)

            received = []
            progress = asyncio.Condition()

            async def read_fast():
                while len(received) < BURST:
                    frame = json.loads(await fast.recv())
                    self.assertEqual("message", frame["op"], frame)
                    async with progress:
                        received.append(frame["data"]["seq"])
                        progress.notify_all()

            reader = asyncio.create_task(read_fast())
            try:
                for seq in range(BURST):
                    async with progress:
                        await asyncio.wait_for(progress.wait_for(
                            lambda: len(received) >= seq - WINDOW or reader.done()), 10)
                    if reader.done():
                        break
                    await send_json(pub, {"op": "publish", "channel": "firehose",
                                          "data": {"seq": seq, "pad": PAD}})
                await asyncio.wait_for(reader, 60)
            finally:
                reader.cancel()

            # In order, exactly once.
            self.assertEqual(list(range(BURST)), received)
            self.assertEqual([], await ping_barrier(fast))

        # The slow client's socket ends once it reads again: a 4001 close frame if one fit, or
        # EOF/reset if the relay had to give up on the close handshake.
        slow.resume_reading()
        closed = await slow.wait_closed(timeout=30)
        self.assertIsInstance(closed, Closed)
        if closed.code is not None:
            self.assertEqual(4001, closed.code, closed)
        await slow.close()

        series = await relay.wait_metric(
            lambda s: metric(s, "wsrelay_disconnects_total", code="4001") >= 1,
            what="disconnects{code=4001} >= 1")
        self.assertGreater(
            metric(series, "wsrelay_dropped_messages_total", reason="slow_consumer_close"), 0)
        # The fast subscriber and the publisher were never treated as slow.
        self.assertEqual(1, metric(series, "wsrelay_disconnects_total", code="4001"))

    async def test_drop_oldest_keeps_the_connection(self):
        relay = await self.start_relay({
            "limits.send_queue_bytes": 65536,
            "websocket.max_message_bytes": 16384,
            "limits.slow_consumer": "drop_oldest",
        })
        slow = await relay.raw_connect(rcvbuf=4096)
        try:
            await slow.send_json({"op": "subscribe", "channel": "firehose", "id": 1})
            self.assertEqual({"op": "ack", "id": 1}, await slow.recv_json())
            slow.pause_reading()
            async with relay.ws_connect() as pub:
                # Acks pace the publisher; DROP_BURST is more than the kernel buffers for a client
                # that stops reading, so the relay's own 64 KB queue does overflow.
                for seq in range(DROP_BURST):
                    await send_json(pub, {"op": "publish", "channel": "firehose",
                                          "data": {"seq": seq, "pad": PAD}, "id": seq})
                    self.assertEqual({"op": "ack", "id": seq}, json.loads(await pub.recv()))
            series = await relay.wait_metric(
                lambda s: metric(s, "wsrelay_dropped_messages_total",
                                 reason="slow_consumer_drop") > 0
                and metric(s, "wsrelay_connections") == 1,
                what="dropped{reason=slow_consumer_drop} > 0 with the slow client connected")
            self.assertEqual(0, metric(series, "wsrelay_disconnects_total", code="4001"))

            # Reading again: the client is still connected and gets the newest messages.
            slow.resume_reading()
            last = -1
            seqs = []
            while last != DROP_BURST - 1:
                frame = await slow.recv_json(timeout=10)
                last = frame["data"]["seq"]
                seqs.append(last)
            self.assertEqual(sorted(seqs), seqs)
            self.assertLess(len(seqs), DROP_BURST)
            await slow.send_json({"op": "ping", "id": 5})
            self.assertEqual({"op": "pong", "id": 5}, await slow.recv_json())
        finally:
            await slow.close()


if __name__ == "__main__":
    unittest.main()
