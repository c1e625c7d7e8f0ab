"""limits.max_connections_per_user across a fleet: three relays and one real Redis, real clients
with JWTs. A user's connections are counted on every instance together; one more is refused with
429 before the upgrade, or admitted while the user's oldest, on another instance, closes with 4501.
The memory broker does the same inside one relay. (docs/scaling.md "Per-user limit".)"""

import contextlib
import json
import unittest

from auth_tokens import auth_config, claims, connect, count, shared_keys
from relay_harness import RelayTestCase, closed_with, ping_barrier, redis_overrides, wait_until

SET_KEY = "wsrelay:{fleet}:u:"


def token(user):
    return shared_keys().token(payload=claims(sub=user))


def limit_config(limit, policy, extra=None):
    config = auth_config({"limits.max_connections_per_user": limit,
                          "limits.per_user_policy": policy,
                          "log.level": "info"}, pem=False)
    config.update(extra or {})
    return config


class UserLimitTest(RelayTestCase):
    async def fleet(self, limit, policy, instances=3):
        redis = self.start_redis()
        relays = [await self.start_relay(redis_overrides(redis, limit_config(limit, policy)))
                  for _ in range(instances)]
        # Every worker's broker up (a connection to a worker whose broker is not would be
        # admitted unchecked).
        for relay in relays:
            await wait_until(lambda relay=relay: relay.http_get("/readyz")[0] == 200,
                             what="the relay ready")
        return redis, relays

    async def assertRefused(self, relay, user, held):
        status, head, body = await relay.ahttp_upgrade(
            "/ws", {"Authorization": f"Bearer {token(user)}"})
        self.assertEqual(429, status, body)
        self.assertIn("application/json", head.get("content-type", ""))
        self.assertEqual({"error": "too many connections",
                          "reason": f"this user holds {held} connections "
                                    "(limits.max_connections_per_user)"}, json.loads(body))

    async def test_refuse_counts_the_user_on_every_instance(self):
        redis, (a, b, c) = await self.fleet(2, "refuse")
        async with contextlib.AsyncExitStack() as stack:
            first = await stack.enter_async_context(connect(a, token("ann")))
            await stack.enter_async_context(connect(b, token("ann")))
            await self.assertRefused(c, "ann", 2)
            await self.assertRefused(a, "ann", 2)
            # Another user has a limit of their own.
            bob = await stack.enter_async_context(connect(c, token("bob")))
            await ping_barrier(bob)
            series = await c.ametrics()
            self.assertEqual(1, count(series, "wsrelay_handshakes_total", result="user_limit"))

            # A close frees its place, fleet-wide, once the relay has told Redis.
            await first.close()
            await wait_until(lambda: redis.command("ZCARD", SET_KEY + "ann") == 1,
                             what="ann's set holds one connection")
            again = await stack.enter_async_context(connect(c, token("ann")))
            await ping_barrier(again)
            await self.assertRefused(b, "ann", 2)
        # Every connection gone: nothing is left behind in Redis.
        await wait_until(lambda: redis.command("KEYS", SET_KEY + "*") == [],
                         what="no per-user set left")

    async def test_evict_oldest_closes_it_on_another_instance_with_4501(self):
        redis, (a, b, c) = await self.fleet(2, "evict_oldest")
        async with contextlib.AsyncExitStack() as stack:
            oldest = await stack.enter_async_context(connect(a, token("ann")))
            middle = await stack.enter_async_context(connect(b, token("ann")))
            await ping_barrier(oldest)
            newest = await stack.enter_async_context(connect(c, token("ann")))
            code, _ = await closed_with(oldest)
            self.assertEqual(4501, code)
            self.assertEqual("replaced by a newer connection", oldest.close_reason)
            # The others stay.
            await ping_barrier(middle)
            await ping_barrier(newest)
            self.assertEqual(2, redis.command("ZCARD", SET_KEY + "ann"))
            self.assertEqual(1, count(await c.ametrics(), "wsrelay_user_limit_evictions_total"))
            await a.wait_metric(lambda s: count(s, "wsrelay_disconnects_total", code="4501") == 1,
                                what="the evicted close counted where it was held")

            # The next one evicts the next oldest, wherever it is.
            latest = await stack.enter_async_context(connect(a, token("ann")))
            code, _ = await closed_with(middle)
            self.assertEqual(4501, code)
            await ping_barrier(latest)
            await ping_barrier(newest)

    async def test_fail_open_while_redis_is_down(self):
        redis, (a,) = await self.fleet(1, "refuse", instances=1)
        async with connect(a, token("ann")) as ws:
            await ping_barrier(ws)
            await self.assertRefused(a, "ann", 1)
            redis.kill()
            # Admitted unchecked, and counted as such.
            async with connect(a, token("ann")) as second:
                await ping_barrier(second)
            self.assertEqual(1, count(await a.ametrics(), "wsrelay_user_limit_unchecked_total"))
            self.assertIn("limits.max_connections_per_user not checked", a.log())


class UserLimitMemoryTest(RelayTestCase):
    async def test_memory_broker_refuses_and_evicts_across_workers(self):
        refusing = await self.start_relay(limit_config(1, "refuse", {"workers": 2}))
        async with connect(refusing, token("ann")) as ws:
            await ping_barrier(ws)
            for _ in range(4):  # the kernel spreads them over both workers
                status, _, body = await refusing.ahttp_upgrade(
                    "/ws", {"Authorization": f"Bearer {token('ann')}"})
                self.assertEqual(429, status, body)
        # Closed: its place is free again.
        await wait_until(self._admitted(refusing, "ann"), what="ann admitted after the close")

        evicting = await self.start_relay(limit_config(1, "evict_oldest", {"workers": 2}))
        async with contextlib.AsyncExitStack() as stack:
            held = await stack.enter_async_context(connect(evicting, token("ann")))
            for _ in range(3):
                newer = await stack.enter_async_context(connect(evicting, token("ann")))
                code, _ = await closed_with(held)
                self.assertEqual(4501, code)
                await ping_barrier(newer)
                held = newer

    @staticmethod
    def _admitted(relay, user):
        async def check():
            status, _, _ = await relay.ahttp_upgrade(
                "/ws", {"Authorization": f"Bearer {token(user)}"})
            return status == 101
        return check


if __name__ == "__main__":
    unittest.main()
