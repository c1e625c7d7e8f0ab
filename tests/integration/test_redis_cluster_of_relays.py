"""Several relay instances sharing one real Redis: cross-instance delivery, backend PUBLISH, and
the Redis subscriptions the relays hold."""

import asyncio
import collections
import contextlib
import json
import time
import unittest

from relay_harness import (RelayTestCase, UNMETERED, metric, ping_barrier, recv_json,
                           redis_overrides, request, send_json, subscribe, wait_until)

INSTANCES = 3
BURST_TIMEOUT = 120.0  # generous for the sanitizer build; the plain build takes a few seconds


class RedisClusterOfRelaysTest(RelayTestCase):
    relay_defaults = UNMETERED

    async def start_instances(self, redis, count, extra=None):
        return [await self.start_relay(redis_overrides(redis, extra)) for _ in range(count)]

    async def wait_redis_holds(self, redis, relays, channel):
        """Waits until Redis has a subscriber for `channel` from every worker that has a local
        subscriber of it (the relays' wsrelay_channels, when `channel` is their only channel):
        the relays' subscriptions as Redis counts them, for tests that compare that count."""
        async def holds():
            wanted = 0
            for relay in relays:
                wanted += metric(await relay.ametrics(), "wsrelay_channels")
            held = await redis.anumsub(channel)
            return wanted > 0 and held == wanted and held
        return await wait_until(holds, what=f"Redis subscribers of {channel} == local ones")

    async def test_burst_between_instances_exactly_once_in_order(self):
        redis = self.start_redis()
        # Room for the whole burst in each send queue: this test is about the broker, not about
        # a Python reader that falls behind.
        relays = await self.start_instances(redis, INSTANCES, {"limits.send_queue_messages": 8192})
        per_instance, per_client = 2, 500
        senders = INSTANCES * per_instance
        total = senders * per_client

        async with contextlib.AsyncExitStack() as stack:
            clients = []
            for relay in relays:
                for _ in range(per_instance):
                    clients.append(await stack.enter_async_context(relay.ws_connect()))
            for ws in clients:
                await subscribe(ws, "burst", id=1)
            held = await self.wait_redis_holds(redis, relays, "burst")

            async def read_all(ws):
                frames = []
                while len(frames) < total:
                    frames.append(await recv_json(ws, timeout=BURST_TIMEOUT))
                return frames

            async def publish_all(sender, ws):
                for seq in range(per_client):
                    await send_json(ws, {"op": "publish", "channel": "burst",
                                         "data": {"from": sender, "seq": seq}})

            readers = [asyncio.create_task(read_all(ws)) for ws in clients]
            try:
                await asyncio.wait_for(
                    asyncio.gather(*(publish_all(i, ws) for i, ws in enumerate(clients))),
                    BURST_TIMEOUT)
                received = await asyncio.wait_for(asyncio.gather(*readers), BURST_TIMEOUT)
            finally:
                for task in readers:
                    task.cancel()

            for receiver, frames in enumerate(received):
                bad = [f for f in frames if f.get("op") != "message" or f.get("channel") != "burst"]
                self.assertEqual([], bad[:5], f"client {receiver}: unexpected frames")
                counts = collections.Counter((f["data"]["from"], f["data"]["seq"]) for f in frames)
                self.assertEqual(total, len(counts), f"client {receiver}: lost messages")
                self.assertEqual({1}, set(counts.values()), f"client {receiver}: duplicates")
                for sender in range(senders):
                    seqs = [f["data"]["seq"] for f in frames if f["data"]["from"] == sender]
                    self.assertEqual(list(range(per_client)), seqs,
                                     f"client {receiver}: order from sender {sender}")
            # Nothing more is on its way to anyone.
            for ws in clients:
                self.assertEqual([], await ping_barrier(ws))

            # Each client publish counted once by its instance; each message counted once by
            # every worker holding the channel.
            series = [await relay.ametrics() for relay in relays]
            self.assertEqual(total, sum(metric(s, "wsrelay_broker_publishes_total")
                                        for s in series))
            self.assertEqual(total * held, sum(metric(s, "wsrelay_broker_messages_total")
                                               for s in series))
            self.assertEqual(0, sum(metric(s, "wsrelay_broker_publish_failures_total")
                                    for s in series))
            # Every delivery of a client publish is timed end to end: the stamp crossed Redis.
            self.assertEqual(total * len(clients),
                             sum(metric(s, "wsrelay_delivery_latency_seconds_count")
                                 for s in series))

    async def test_a_publish_right_after_the_ack_reaches_the_subscriber(self):
        # The ack of a subscribe says the subscription is live everywhere: Redis confirmed the
        # relay's SUBSCRIBE, so a message another instance publishes the moment the ack arrives
        # reaches the subscriber, with no wait on Redis' side. Each round takes a fresh channel,
        # whose SUBSCRIBE is in flight when the client subscribes.
        redis = self.start_redis()
        subscriber_relay, publisher_relay = await self.start_instances(redis, 2)
        async with subscriber_relay.ws_connect() as sub, publisher_relay.ws_connect() as pub:
            for round_ in range(30):
                channel = f"fresh:{round_}"
                await subscribe(sub, channel, id=round_ + 1)
                reply = await request(pub, {"op": "publish", "channel": channel,
                                            "data": {"round": round_}, "id": 1000 + round_})
                self.assertEqual({"op": "ack", "id": 1000 + round_}, reply)
                self.assertEqual({"op": "message", "channel": channel, "data": {"round": round_}},
                                 await recv_json(sub))

    async def test_backend_publish_reaches_every_instance(self):
        redis = self.start_redis()
        relays = await self.start_instances(redis, INSTANCES)
        async with contextlib.AsyncExitStack() as stack:
            clients = []
            for relay in relays:
                ws = await stack.enter_async_context(relay.ws_connect())
                await subscribe(ws, "chat:lobby", id=1)
                clients.append(ws)
            held = await self.wait_redis_holds(redis, relays, "chat:lobby")

            self.assertEqual(held, await redis.apublish("chat:lobby", '{"text":"hi"}'))
            for ws in clients:
                self.assertEqual({"op": "message", "channel": "chat:lobby",
                                  "data": {"text": "hi"}}, await recv_json(ws))

            # Not JSON: delivered as a JSON string.
            await redis.apublish("chat:lobby", "hello")
            for ws in clients:
                raw = await asyncio.wait_for(ws.recv(), 5)
                self.assertEqual({"op": "message", "channel": "chat:lobby", "data": "hello"},
                                 json.loads(raw))

            # Not JSON and not UTF-8: each invalid byte becomes U+FFFD; empty is "".
            await redis.apublish("chat:lobby", b"caf\xc3\xa9 \xff")
            await redis.apublish("chat:lobby", b"")
            for ws in clients:
                self.assertEqual({"op": "message", "channel": "chat:lobby",
                                  "data": "caf\u00e9 \ufffd"}, await recv_json(ws))
                self.assertEqual({"op": "message", "channel": "chat:lobby", "data": ""},
                                 await recv_json(ws))

            # Valid JSON is embedded as it is, byte for byte.
            exact = '{"b" : [1.50, 2e3],  "a":"\\u00e9"}'
            await redis.apublish("chat:lobby", exact)
            for ws in clients:
                raw = await asyncio.wait_for(ws.recv(), 5)
                self.assertIn('"data":' + exact, raw)
            for ws in clients:
                self.assertEqual([], await ping_barrier(ws))

            # Unstamped backend publishes are not timed; one the backend stamps is, and the
            # stamp never reaches clients.
            series = [await relay.ametrics() for relay in relays]
            self.assertEqual(0, sum(metric(s, "wsrelay_delivery_latency_seconds_count")
                                    for s in series))
            stamp = b"\x1e%d\x1e" % (time.time_ns() // 1000)
            await redis.apublish("chat:lobby", stamp + b'{"stamped":true}')
            for ws in clients:
                self.assertEqual({"op": "message", "channel": "chat:lobby",
                                  "data": {"stamped": True}}, await recv_json(ws))
            series = [await relay.ametrics() for relay in relays]
            self.assertEqual(len(clients), sum(
                metric(s, "wsrelay_delivery_latency_seconds_count") for s in series))

    async def test_prefix_maps_redis_channels_to_client_channels(self):
        redis = self.start_redis()
        relay = await self.start_relay(redis_overrides(redis, {"broker.redis.prefix": "app:"}))
        async with relay.ws_connect() as ws:
            await subscribe(ws, "chat", id=1)
            await wait_until(lambda: redis.numsub("app:chat") >= 1, what="NUMSUB app:chat >= 1")
            self.assertEqual(0, await redis.anumsub("chat"))

            await redis.apublish("chat", '"unprefixed"')  # nobody listens there
            await redis.apublish("app:chat", '{"text":"hi"}')
            self.assertEqual({"op": "message", "channel": "chat", "data": {"text": "hi"}},
                             await recv_json(ws))
            self.assertEqual([], await ping_barrier(ws))

            # A client publish goes out on the prefixed Redis channel.
            # (The ack and the copy come in either order.)
            await send_json(ws, {"op": "publish", "channel": "chat", "data": 7, "id": 2})
            got = [await recv_json(ws), await recv_json(ws)]
            self.assertIn({"op": "ack", "id": 2}, got)
            self.assertIn({"op": "message", "channel": "chat", "data": 7}, got)
            self.assertEqual([], await ping_barrier(ws))

    async def test_redis_subscription_follows_local_subscribers(self):
        redis = self.start_redis()
        relay = await self.start_relay(redis_overrides(redis))

        async def numsub_is(channel, want):
            await wait_until(lambda: redis.numsub(channel) == want,
                             what=f"PUBSUB NUMSUB {channel} == {want}")

        # Last subscriber leaves by unsubscribing.
        async with relay.ws_connect() as a:
            await subscribe(a, "numsub:a", id=1)
            await wait_until(lambda: redis.numsub("numsub:a") >= 1, what="NUMSUB numsub:a >= 1")
            reply = await request(a, {"op": "unsubscribe", "channel": "numsub:a", "id": 2})
            self.assertEqual({"op": "ack", "id": 2}, reply)
            await numsub_is("numsub:a", 0)

        # Last subscriber leaves by disconnecting.
        async with relay.ws_connect() as b:
            await subscribe(b, "numsub:b", id=1)
            await wait_until(lambda: redis.numsub("numsub:b") >= 1, what="NUMSUB numsub:b >= 1")
        await numsub_is("numsub:b", 0)

        # While one local subscriber remains, the Redis subscription stays and delivers.
        async with relay.ws_connect() as c, relay.ws_connect() as d:
            await subscribe(c, "numsub:c", id=1)
            await subscribe(d, "numsub:c", id=1)
            await wait_until(lambda: redis.numsub("numsub:c") >= 1, what="NUMSUB numsub:c >= 1")
            reply = await request(c, {"op": "unsubscribe", "channel": "numsub:c", "id": 2})
            self.assertEqual({"op": "ack", "id": 2}, reply)
            self.assertGreaterEqual(await redis.anumsub("numsub:c"), 1)
            await redis.apublish("numsub:c", "1")
            self.assertEqual({"op": "message", "channel": "numsub:c", "data": 1},
                             await recv_json(d))
            self.assertEqual([], await ping_barrier(c))
        await numsub_is("numsub:c", 0)

        # Only the relay's own channels remain (the delivery probes', the fleet's control channel
        # and each worker's inbox: docs/scaling.md "Control channels"), and never a pattern
        # subscription.
        self.assertEqual(0, await redis.acommand("PUBSUB", "NUMPAT"))
        channels = [c.decode() for c in await redis.acommand("PUBSUB", "CHANNELS")]
        self.assertTrue(all(c.startswith(("__wsrelay_probe:", "wsrelay:{fleet}:"))
                            for c in channels), channels)
        self.assertIn("wsrelay:{fleet}:ctl", channels)


if __name__ == "__main__":
    unittest.main()
