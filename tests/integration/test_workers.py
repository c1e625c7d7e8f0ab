"""Several workers: clients land on different workers and still see every message, in order."""

import asyncio
import json
import unittest

from relay_harness import UNMETERED, RelayTestCase, metric, ping_barrier, send_json, subscribe

SUBSCRIBERS = 40
BURST = 500
WINDOW = 50  # publishes ahead of the slowest subscriber


class WorkersTest(RelayTestCase):
    relay_defaults = UNMETERED  # one connection publishes the burst

    async def test_fan_out_across_workers(self):
        relay = await self.start_relay({"workers": 2})
        subs = [await relay.ws_connect() for _ in range(SUBSCRIBERS)]
        try:
            for ws in subs:
                await subscribe(ws, "fanout", id=1)
            series = await relay.ametrics()
            self.assertEqual(2, metric(series, "wsrelay_workers"))
            self.assertEqual(SUBSCRIBERS, metric(series, "wsrelay_subscriptions"))
            # 41 connections spread by SO_REUSEPORT: both workers hold the channel (all on one
            # worker has probability 2^-40).
            self.assertEqual(2, metric(series, "wsrelay_channels"))

            received = [[] for _ in subs]
            progress = asyncio.Condition()

            async def read(i, ws):
                while len(received[i]) < BURST:
                    frame = json.loads(await ws.recv())
                    self.assertEqual(("message", "fanout"), (frame["op"], frame["channel"]))
                    async with progress:
                        received[i].append(frame["data"])
                        progress.notify_all()

            readers = [asyncio.create_task(read(i, ws)) for i, ws in enumerate(subs)]
            try:
                async with relay.ws_connect() as pub:
                    for seq in range(BURST):
                        async with progress:
                            await asyncio.wait_for(progress.wait_for(
                                lambda: min(map(len, received)) >= seq - WINDOW
                                or any(r.done() for r in readers)), 20)
                        if any(r.done() for r in readers):
                            break
                        await send_json(pub, {"op": "publish", "channel": "fanout", "data": seq})
                    await asyncio.wait_for(asyncio.gather(*readers), 60)
            finally:
                for r in readers:
                    r.cancel()

            for got in received:
                self.assertEqual(list(range(BURST)), got)
            for ws in subs:
                self.assertEqual([], await ping_barrier(ws))
            series = await relay.ametrics()
            self.assertEqual(0, metric(series, "wsrelay_dropped_messages_total",
                                       reason="slow_consumer_close"))
        finally:
            for ws in subs:
                await ws.close()


if __name__ == "__main__":
    unittest.main()
