"""A relay on a real Redis that goes away: readiness, what clients see during and after an outage,
Redis down at startup, and Redis dropping the relay's subscriber connections."""

import json
import unittest

from relay_harness import (RelayTestCase, metric, ping_barrier, recv_json, redis_overrides,
                           request, send_json, subscribe, wait_until)

RECOVERY_TIMEOUT = 15.0  # reconnect waits are capped at 200 ms; the rest is sanitizer headroom


class RedisOutageTest(RelayTestCase):
    async def readyz(self, relay):
        status, _, body = await relay.ahttp_get("/readyz")
        return status, json.loads(body)

    async def wait_readyz(self, relay, status, timeout=RECOVERY_TIMEOUT):
        async def check():
            got, body = await self.readyz(relay)
            return (got, body) if got == status else None
        return await wait_until(check, timeout, what=f"/readyz answering {status}")

    async def wait_ready_metric(self, relay, value):
        await relay.wait_metric(lambda s: metric(s, "wsrelay_ready") == value,
                                timeout=RECOVERY_TIMEOUT, what=f"wsrelay_ready == {value}")

    async def resubscribed(self, ws, channels, timeout=RECOVERY_TIMEOUT):
        """Reads frames until one `resubscribed` notice per channel has arrived; fails on any
        other frame or on a second notice for the same channel."""
        seen = []
        while set(seen) != set(channels):
            frame = await recv_json(ws, timeout)
            self.assertEqual({"op": "resubscribed", "gap": True}, {
                "op": frame.get("op"), "gap": frame.get("gap")}, frame)
            self.assertIn(frame.get("channel"), channels, frame)
            self.assertNotIn(frame["channel"], seen, f"second notice: {frame}")
            seen.append(frame["channel"])

    async def test_redis_killed_and_restarted(self):
        redis = self.start_redis()
        relay = await self.start_relay(redis_overrides(redis))
        await self.wait_readyz(relay, 200)
        await self.wait_ready_metric(relay, 1)
        async with relay.ws_connect() as a, relay.ws_connect() as b:
            await subscribe(a, "out:1", id=1)
            await subscribe(a, "out:2", id=2)
            await subscribe(b, "out:1", id=1)
            await wait_until(lambda: redis.numsub("out:1") >= 1 and redis.numsub("out:2") >= 1,
                             what="Redis subscriptions for out:1 and out:2")
            before = await relay.ametrics()

            redis.kill()
            _, body = await self.wait_readyz(relay, 503)
            self.assertFalse(body["ready"])
            self.assertIn("broker", body["reason"])
            await self.wait_ready_metric(relay, 0)
            self.assertEqual(0, metric(await relay.ametrics(), "wsrelay_broker_up"))

            # Clients stay connected, and a publish is refused out loud, never silently.
            self.assertEqual({"op": "pong", "id": 3}, await request(a, {"op": "ping", "id": 3}))
            reply = await request(a, {"op": "publish", "channel": "out:1", "data": 1, "id": 4})
            self.assertEqual(("error", 503, 4), (reply["op"], reply["code"], reply["id"]), reply)
            await send_json(b, {"op": "publish", "channel": "out:1", "data": 2})
            reply = await recv_json(b)
            self.assertEqual(("error", 503), (reply["op"], reply["code"]), reply)
            self.assertNotIn("id", reply)
            # Subscribing and unsubscribing still work locally meanwhile.
            await subscribe(b, "out:3", id=5)
            reply = await request(b, {"op": "unsubscribe", "channel": "out:3", "id": 6})
            self.assertEqual({"op": "ack", "id": 6}, reply)
            failures = metric(await relay.ametrics(), "wsrelay_broker_publish_failures_total")
            self.assertGreaterEqual(
                failures - metric(before, "wsrelay_broker_publish_failures_total"), 2)

            redis.start()  # the same port
            await self.resubscribed(a, ["out:1", "out:2"])
            await self.resubscribed(b, ["out:1"])
            await self.wait_readyz(relay, 200)
            await self.wait_ready_metric(relay, 1)

            # Delivery works again: a client publish, and a backend's.
            await send_json(a, {"op": "publish", "channel": "out:1", "data": "back", "id": 7})
            got = [await recv_json(a), await recv_json(a)]
            self.assertIn({"op": "ack", "id": 7}, got)
            self.assertIn({"op": "message", "channel": "out:1", "data": "back"}, got)
            self.assertEqual({"op": "message", "channel": "out:1", "data": "back"},
                             await recv_json(b))
            await redis.apublish("out:2", '{"n":2}')
            self.assertEqual({"op": "message", "channel": "out:2", "data": {"n": 2}},
                             await recv_json(a))
            # One notice per channel, nothing else pending.
            self.assertEqual([], await ping_barrier(a))
            self.assertEqual([], await ping_barrier(b))
            # out:3 was dropped while Redis was away: it is not subscribed after recovery.
            self.assertEqual(0, await redis.anumsub("out:3"))

        after = await relay.ametrics()
        self.assertEqual(1, metric(after, "wsrelay_broker_up"))
        self.assertEqual(0, metric(before, "wsrelay_broker_reconnects_total"))
        # One recovery per worker (the harness's default is two workers).
        self.assertEqual(metric(after, "wsrelay_workers"),
                         metric(after, "wsrelay_broker_reconnects_total"))
        self.assertGreater(metric(after, "wsrelay_broker_publish_duration_seconds_count"),
                           metric(before, "wsrelay_broker_publish_duration_seconds_count"))
        self.assertGreater(metric(after, "wsrelay_broker_publishes_total"),
                           metric(before, "wsrelay_broker_publishes_total"))
        self.assertGreater(metric(after, "wsrelay_broker_messages_total"),
                           metric(before, "wsrelay_broker_messages_total"))

    async def test_redis_down_at_startup(self):
        redis = self.start_redis(start=False)
        relay = await self.start_relay(redis_overrides(redis))  # its ready line was printed
        status, body = await self.readyz(relay)
        self.assertEqual(503, status)
        self.assertIn("broker", body["reason"])
        self.assertEqual(0, metric(await relay.ametrics(), "wsrelay_ready"))
        status, _, _ = await relay.ahttp_get("/healthz")  # alive: nothing to restart
        self.assertEqual(200, status)
        async with relay.ws_connect() as a, relay.ws_connect() as b:
            reply = await request(a, {"op": "publish", "channel": "boot", "data": 1, "id": 1})
            self.assertEqual(("error", 503, 1), (reply["op"], reply["code"], reply["id"]), reply)
            await subscribe(a, "boot", id=2)  # taken now, sent to Redis once it is there

            redis.start()
            await self.wait_readyz(relay, 200)
            await self.wait_ready_metric(relay, 1)
            await subscribe(b, "boot", id=1)
            await wait_until(lambda: redis.numsub("boot") >= 1, what="NUMSUB boot >= 1")
            # b's worker may be another one than a's: wait for both to hold the channel.
            channels = metric(await relay.ametrics(), "wsrelay_channels")
            await wait_until(lambda: redis.numsub("boot") == channels,
                             what=f"NUMSUB boot == {channels}")

            await send_json(b, {"op": "publish", "channel": "boot", "data": "up", "id": 2})
            got = [await recv_json(b), await recv_json(b)]
            self.assertIn({"op": "ack", "id": 2}, got)
            self.assertIn({"op": "message", "channel": "boot", "data": "up"}, got)
            self.assertEqual({"op": "message", "channel": "boot", "data": "up"},
                             await recv_json(a))
            # The first connection is not a recovery: no gap notice.
            self.assertEqual([], await ping_barrier(a))
            self.assertEqual([], await ping_barrier(b))

    async def test_redis_drops_the_subscriber_connections(self):
        redis = self.start_redis()
        relay = await self.start_relay(redis_overrides(redis))
        await self.wait_readyz(relay, 200)
        async with relay.ws_connect() as a:
            await subscribe(a, "kill:1", id=1)
            await wait_until(lambda: redis.numsub("kill:1") >= 1, what="NUMSUB kill:1 >= 1")

            # What Redis does to a subscriber over client-output-buffer-limit pubsub.
            killed = await redis.acommand("CLIENT", "KILL", "TYPE", "pubsub")
            self.assertGreaterEqual(killed, 2)  # one subscriber connection per worker

            await self.resubscribed(a, ["kill:1"])
            await redis.apublish("kill:1", '"again"')
            self.assertEqual({"op": "message", "channel": "kill:1", "data": "again"},
                             await recv_json(a))
            await send_json(a, {"op": "publish", "channel": "kill:1", "data": 2, "id": 2})
            got = [await recv_json(a), await recv_json(a)]
            self.assertIn({"op": "ack", "id": 2}, got)
            self.assertIn({"op": "message", "channel": "kill:1", "data": 2}, got)
            self.assertEqual([], await ping_barrier(a))
        await self.wait_readyz(relay, 200)

    async def test_wedged_subscription_fails_readiness(self):
        # Connected but not delivering: CLIENT PAUSE WRITE holds every PUBLISH, so the delivery
        # probes stop coming back while every connection stays open.
        redis = self.start_redis()
        # One worker: with two, the first worker whose probe is late turns /readyz 503, the test
        # unpauses at once, and the client may sit on the other worker, which never went down.
        relay = await self.start_relay(redis_overrides(redis, {
            "workers": 1,
            "broker.redis.probe_interval_ms": 50, "broker.redis.probe_timeout_ms": 300}))
        await self.wait_readyz(relay, 200)
        async with relay.ws_connect() as a:
            await subscribe(a, "wedge", id=1)
            await wait_until(lambda: redis.numsub("wedge") >= 1, what="NUMSUB wedge >= 1")
            self.assertEqual("OK", await redis.acommand("CLIENT", "PAUSE", "30000", "WRITE"))
            try:
                _, body = await self.wait_readyz(relay, 503)
                self.assertIn("broker", body["reason"])
                # The probe that never came back shows as an age past the timeout.
                self.assertGreaterEqual(
                    metric(await relay.ametrics(), "wsrelay_broker_probe_age_seconds"), 0.25)
            finally:
                self.assertEqual("OK", await redis.acommand("CLIENT", "UNPAUSE"))
            await self.resubscribed(a, ["wedge"])
            await self.wait_readyz(relay, 200)
            await redis.apublish("wedge", "1")
            self.assertEqual({"op": "message", "channel": "wedge", "data": 1},
                             await recv_json(a))
            self.assertEqual([], await ping_barrier(a))

    async def test_stops_cleanly_while_redis_is_down(self):
        redis = self.start_redis()
        relay = await self.start_relay(redis_overrides(redis))
        await self.wait_readyz(relay, 200)
        async with relay.ws_connect() as a:
            await subscribe(a, "gone", id=1)
            redis.kill()
            await self.wait_readyz(relay, 503)
        # RelayTestCase stops the relay and fails unless it exits 0 (leaks included under ASan).


if __name__ == "__main__":
    unittest.main()
