"""Instance leases (docs/scaling.md "Leases"): three relays share one Redis and one hook backend
process; a relay killed without draining has each of its connections reported to the app once,
as a disconnect with reason instance_lost, by one of the others, within the stated bound; a relay
drained normally has none reported."""

import asyncio
import contextlib
import signal
import time

from hook_gate_backend import GateBackend
from relay_harness import RelayTestCase, UNMETERED, redis_overrides, subscribe, wait_until

TTL_MS = 1500
RENEW_MS = 300
# fleet.lease_ttl_ms + fleet.lease_renew_ms, plus the hook's time and slack for a loaded machine
# (the sanitizer build included).
BOUND_S = (TTL_MS + RENEW_MS) / 1000 + 6.0
PER_RELAY = 40
FLEET = "wsrelay:{fleet}"


class InstanceLostTest(RelayTestCase):
    relay_defaults = UNMETERED

    def setUp(self):
        super().setUp()
        self.backend = GateBackend()
        self.addCleanup(self.backend.stop)

    async def start_fleet(self, redis, count):
        await self.backend.script("connect", {"user": "u1", "meta": {"tier": "gold"}})
        config = redis_overrides(redis, {
            "workers": 2,
            "hook.url": self.backend.url(),
            "hook.events": ["connect", "disconnect"],
            "fleet.lease_ttl_ms": TTL_MS,
            "fleet.lease_renew_ms": RENEW_MS,
        })
        relays = []
        for _ in range(count):
            relays.append(await self.start_relay(config, check_exit=False))
        return relays

    async def connect_all(self, stack, relay, count):
        """`count` connections to `relay`, each subscribed to two channels; returns their
        connection ids as the app saw them at connect."""
        before = {e["connection"] for e in await self.backend.events() if e["event"] == "connect"}
        for i in range(count):
            ws = await stack.enter_async_context(relay.ws_connect())
            await subscribe(ws, f"room{i % 3}", id=1)
            await subscribe(ws, "lobby", id=2)
        ids = {e["connection"] for e in await self.backend.events()
               if e["event"] == "connect"} - before
        self.assertEqual(len(ids), count)
        return ids

    async def registered(self, redis, ids):
        """Waits until Redis holds a record of every connection in `ids` (one instance's)."""
        instance = next(iter(ids)).split(".")[0]
        key = f"{FLEET}:c:{instance}"

        async def all_there():
            return await asyncio.to_thread(redis.command, "HLEN", key) == len(ids)
        await wait_until(all_there, what=f"{len(ids)} records in {key}")
        return instance

    async def lost_events(self):
        return [e for e in await self.backend.events()
                if e["event"] == "disconnect" and e["reason"] == "instance_lost"]

    async def test_killed_relay_reported_once_per_connection(self):
        redis = self.start_redis()
        a, b, c = await self.start_fleet(redis, 3)
        async with contextlib.AsyncExitStack() as stack:
            ids_a = await self.connect_all(stack, a, PER_RELAY)
            ids_b = await self.connect_all(stack, b, PER_RELAY)
            ids_c = await self.connect_all(stack, c, PER_RELAY)
            lost = await self.registered(redis, ids_b)
            b.signal(signal.SIGKILL)
            killed = time.monotonic()
            await asyncio.to_thread(b.wait)

            got = await self.backend.wait_events(
                lambda evs: len([e for e in evs if e["event"] == "disconnect"
                                 and e["reason"] == "instance_lost"]) >= PER_RELAY,
                what="an instance_lost disconnect per connection of the killed relay",
                timeout=BOUND_S)
            elapsed = time.monotonic() - killed
            # Two more lease periods: nothing else may come.
            await asyncio.sleep(2 * RENEW_MS / 1000)
            events = await self.lost_events()
            reported = [e["connection"] for e in events]
            self.assertEqual(len(reported), len(set(reported)), "a connection reported twice")
            self.assertEqual(set(reported), ids_b)
            self.assertTrue(set(reported).isdisjoint(ids_a | ids_c))
            self.assertLess(elapsed, BOUND_S)
            for e in events:
                self.assertEqual(e["code"], 1006)
                self.assertEqual(e["user"], "u1")
                self.assertEqual(sorted(e["channels"]),
                                 sorted(["lobby", next(ch for ch in e["channels"]
                                                       if ch.startswith("room"))]))
            del got
            # The claim is over: nothing of the lost instance is left in Redis.
            keys = await asyncio.to_thread(redis.command, "KEYS", f"{FLEET}:*{lost}*")
            self.assertEqual(keys, [])
            leases = await asyncio.to_thread(redis.command, "ZRANGE", f"{FLEET}:leases", 0, -1)
            self.assertNotIn(lost.encode(), [m if isinstance(m, bytes) else m.encode()
                                             for m in leases])

    async def test_drained_relay_reports_nothing_lost(self):
        redis = self.start_redis()
        a, b = await self.start_fleet(redis, 2)
        async with contextlib.AsyncExitStack() as stack:
            await self.connect_all(stack, a, 5)
            ids_b = await self.connect_all(stack, b, PER_RELAY // 2)
            instance = await self.registered(redis, ids_b)
            b.signal(signal.SIGTERM)
            self.assertEqual(await asyncio.to_thread(b.wait), 0)
            # Its own disconnect events, one per connection, none of them instance_lost.
            await self.backend.wait_events(
                lambda evs: {e["connection"] for e in evs if e["event"] == "disconnect"} >= ids_b,
                what="the drained relay's own disconnect events")
            self.assertEqual(await asyncio.to_thread(redis.command, "EXISTS",
                                                     f"{FLEET}:c:{instance}"), 0)
            # Longer than the bound in which a lost instance would have been reported.
            await asyncio.sleep((TTL_MS + 2 * RENEW_MS) / 1000)
            self.assertEqual(await self.lost_events(), [])
