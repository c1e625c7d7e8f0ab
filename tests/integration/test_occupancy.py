"""Channel occupancy (docs/hook.md "Occupied and vacated"): the app hears `occupied` when a
channel gets its first subscriber anywhere in the fleet and `vacated` once it has had none for
hook.vacated_delay_ms. One relay on the memory broker: one occupied for many subscribers, vacated
not before the delay, nothing for a channel left and joined again within it. Three relays on one
real Redis: random churn of real clients across the relays, checked against a model of who was
subscribed when; a relay killed has the channels only it held vacated within the stated bound,
a relay drained has its channel vacated once. The app is hook_gate_backend.py, a process of its
own, whose records carry each event's seq and arrival time."""

import asyncio
import contextlib
import functools
import random
import signal
import time

from hook_gate_backend import GateBackend
from relay_harness import (IO_TIMEOUT, RelayTestCase, UNMETERED, metric, redis_overrides,
                           request, subscribe, wait_until)

EVENTS = ["occupied", "vacated"]
DELAY_MS = 300
LONG_DELAY_MS = 3000  # room for leaving and joining again well within it
TTL_MS = 1500
RENEW_MS = 300
# From the kill: fleet.lease_ttl_ms + 2 * fleet.lease_renew_ms + hook.vacated_delay_ms
# (docs/hook.md), plus the hook's time and slack for a loaded machine (the sanitizer build
# included).
KILL_BOUND_S = (TTL_MS + 2 * RENEW_MS + DELAY_MS) / 1000 + 6.0
# Long enough after an awaited event for a wrong one to have come: the delay and two sweeps.
QUIET_S = (DELAY_MS + 2 * RENEW_MS) / 1000
# Deadlines are whole milliseconds (Redis TIME), so a vacate may fire up to 1 ms before the
# delay has passed on the test's finer clock; a little more for the rounding of both clocks.
CLOCK_SLACK_S = 0.005

CHURN_CLIENTS = 20
CHURN_CHANNELS = [f"churn{i}" for i in range(6)]
CHURN_OPS = 300
CHURN_DELAY_MS = 200
CHURN_SEED = 6021
# How late an event may reach the app after Redis decided it, and a hold may reach Redis after
# its subscribe was acknowledged: a bound for a loaded machine, not a relay setting. A vacated
# that arrives while a client subscribed more recently than this is not proof of a bug (the two
# crossed), provided an occupied follows it.
LATENESS_S = 1.0

def occupancy(events, channel=None):
    """The occupied and vacated events (of `channel`), in seq order."""
    return sorted((e for e in events if e["event"] in EVENTS
                   and (channel is None or e["channel"] == channel)), key=lambda e: e["seq"])


def kinds(events, channel):
    return [e["event"] for e in occupancy(events, channel)]


async def unsubscribe(ws, channel, id):
    reply = await request(ws, {"op": "unsubscribe", "channel": channel, "id": id})
    if reply != {"op": "ack", "id": id}:
        raise AssertionError(f"unsubscribe {channel!r} answered {reply}")


async def fleet_counted(relays, event, expected):
    """Whether the relays' wsrelay_channel_occupancy_events_total{event} add up to `expected`."""
    total = 0
    for relay in relays:
        total += metric(await relay.ametrics(), "wsrelay_channel_occupancy_events_total",
                        event=event)
    return total == expected


class OccupancyTest(RelayTestCase):
    relay_defaults = UNMETERED

    def setUp(self):
        super().setUp()
        self.backend = GateBackend()
        self.addCleanup(self.backend.stop)

    def config(self, delay_ms=DELAY_MS, redis=None):
        config = {"workers": 2, "hook.url": self.backend.url(), "hook.events": EVENTS,
                  "hook.vacated_delay_ms": delay_ms}
        if redis is None:
            return config
        return redis_overrides(redis, {**config, "fleet.lease_ttl_ms": TTL_MS,
                                       "fleet.lease_renew_ms": RENEW_MS})

    async def wait_kinds(self, channel, expected, what, timeout=IO_TIMEOUT):
        return await self.backend.wait_events(lambda evs: kinds(evs, channel) == expected, what,
                                              timeout)

    async def test_memory_broker_one_occupied_and_vacated_after_the_delay(self):
        relay = await self.start_relay(self.config())
        async with contextlib.AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(relay.ws_connect()) for _ in range(4)]
            await subscribe(clients[0], "m")
            await self.wait_kinds("m", ["occupied"], "the occupied event")
            # Three more, on either worker: the channel is occupied already.
            for ws in clients[1:]:
                await subscribe(ws, "m")
            await clients[1].close()
            await unsubscribe(clients[2], "m", 2)
            await unsubscribe(clients[3], "m", 2)
            # The send, not the ack: the channel closes after the relay read the unsubscribe,
            # which may be before its ack reached us.
            left = time.monotonic()
            await unsubscribe(clients[0], "m", 2)
            got = await self.backend.wait_events(lambda evs: "vacated" in kinds(evs, "m"),
                                                 "the vacated event",
                                                 timeout=DELAY_MS / 1000 + IO_TIMEOUT)
        self.assertEqual(["occupied", "vacated"], kinds(got, "m"))
        occupied, vacated = occupancy(got, "m")
        self.assertLess(occupied["seq"], vacated["seq"])
        for e in (occupied, vacated):
            self.assertIsNone(e["connection"])
            self.assertIsNone(e["user"])
        self.assertGreaterEqual(vacated["at"] - left, DELAY_MS / 1000 - CLOCK_SLACK_S)
        series = await relay.wait_metric(
            lambda s: metric(s, "wsrelay_hook_requests_total", event="vacated", result="ok") == 1,
            what="the vacated event answered")
        for event in EVENTS:
            self.assertEqual(1, metric(series, "wsrelay_channel_occupancy_events_total",
                                       event=event), event)
            self.assertEqual(1, metric(series, "wsrelay_hook_requests_total", event=event,
                                       result="ok"), event)

    async def test_memory_broker_left_and_joined_again_within_the_delay_is_no_event(self):
        relay = await self.start_relay(self.config(LONG_DELAY_MS))
        async with relay.ws_connect() as a, relay.ws_connect() as b:
            await subscribe(a, "r")
            await self.wait_kinds("r", ["occupied"], "the occupied event")
            await unsubscribe(a, "r", 2)
            await subscribe(b, "r", 3)
            await unsubscribe(b, "r", 4)
            await subscribe(a, "r", 5)
            left = time.monotonic()
            await unsubscribe(a, "r", 6)
            got = await self.backend.wait_events(lambda evs: "vacated" in kinds(evs, "r"),
                                                 "the vacated event",
                                                 timeout=LONG_DELAY_MS / 1000 + IO_TIMEOUT)
        self.assertEqual(["occupied", "vacated"], kinds(got, "r"))
        # A vacate still pending from the first leave would have come a delay after it, that is
        # before this bound.
        self.assertGreaterEqual(occupancy(got, "r")[1]["at"] - left,
                                LONG_DELAY_MS / 1000 - CLOCK_SLACK_S)

    async def test_churn_across_three_relays_matches_a_model(self):
        redis = self.start_redis()
        relays = [await self.start_relay(self.config(CHURN_DELAY_MS, redis)) for _ in range(3)]
        rng = random.Random(CHURN_SEED)
        holders = {ch: {} for ch in CHURN_CHANNELS}  # channel -> {client: its subscribe acked at}
        spans = {ch: [] for ch in CHURN_CHANNELS}  # channel -> [(subscribe acked, leave sent)]
        async with contextlib.AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(relays[i % 3].ws_connect())
                       for i in range(CHURN_CLIENTS)]
            for n in range(CHURN_OPS):
                # Each channel's subscriber count is a walk leaning towards empty.
                ch = rng.choice(CHURN_CHANNELS)
                held = holders[ch]
                if held and (rng.random() < 0.55 or len(held) == CHURN_CLIENTS):
                    i = rng.choice(sorted(held))
                    sent = time.monotonic()
                    await unsubscribe(clients[i], ch, n)
                    spans[ch].append((held.pop(i), sent))
                else:
                    i = rng.choice([i for i in range(CHURN_CLIENTS) if i not in held])
                    await subscribe(clients[i], ch, id=n)
                    held[i] = time.monotonic()
                # Pacing, not synchronisation: a channel left empty waits about as long as the
                # delay for its next subscriber, so some are vacated and some held again in time.
                await asyncio.sleep(rng.uniform(0, 0.06))
            for i, ws in enumerate(clients):
                sent = time.monotonic()
                await ws.close()
                for ch in CHURN_CHANNELS:
                    if i in holders[ch]:
                        spans[ch].append((holders[ch].pop(i), sent))

        def settled(evs):
            return all(kinds(evs, ch)[-1:] == ["vacated"] for ch in CHURN_CHANNELS)
        await self.backend.wait_events(settled, "every channel vacated at the end",
                                       timeout=CHURN_DELAY_MS / 1000 + IO_TIMEOUT)
        await asyncio.sleep(QUIET_S)
        events = occupancy(await self.backend.events())
        seqs = [e["seq"] for e in events]
        self.assertEqual(len(seqs), len(set(seqs)), "two events with one seq")
        for ch in CHURN_CHANNELS:
            mine = [e for e in events if e["channel"] == ch]
            self.assertEqual(["occupied", "vacated"] * (len(mine) // 2),
                             [e["event"] for e in mine], ch)
            for k, e in enumerate(mine):
                if e["event"] == "vacated":
                    self.check_vacated(ch, e, spans[ch], occupied_after=k + 1 < len(mine))
        # Some vacated during the churn, not only at the end: the debounce was put to the test.
        self.assertGreater(len(events), 2 * len(CHURN_CHANNELS), "the churn never vacated")
        for event in EVENTS:
            count = len([e for e in events if e["event"] == event])
            await wait_until(functools.partial(fleet_counted, relays, event, count),
                             what=f"the fleet's {event} counters adding up to {count}")

    def check_vacated(self, channel, vacated, spans, occupied_after):
        """Against the model: the channel had no subscriber at any time in the delay before the
        vacated event reached the app (a subscriber counted from its subscribe's ack to its
        unsubscribe's send), save one that came too recently to tell from a crossing."""
        at = vacated["at"]
        delay = CHURN_DELAY_MS / 1000
        for acked, left in spans:
            if acked > at:
                continue
            what = f"{channel} vacated (seq {vacated['seq']})"
            if acked <= at - LATENESS_S:
                # Its hold was in Redis before the decision: so was its release, a delay before.
                self.assertLessEqual(left, at, f"{what} while a client subscribed "
                                               f"{at - acked:.3f}s before was still in it")
                self.assertLessEqual(left + delay - CLOCK_SLACK_S, at,
                                     f"{what} {at - left:.3f}s after a client left")
            elif left > at:
                self.assertTrue(occupied_after, f"{what} while a client subscribed "
                                                f"{at - acked:.3f}s before was in it, and no "
                                                f"occupied after")

    async def test_a_killed_relay_s_channels_vacated_within_the_bound(self):
        redis = self.start_redis()
        a = await self.start_relay(self.config(redis=redis))
        b = await self.start_relay(self.config(redis=redis), check_exit=False)
        await self.start_relay(self.config(redis=redis))
        async with contextlib.AsyncExitStack() as stack:
            on_a = await stack.enter_async_context(a.ws_connect())
            on_b = await stack.enter_async_context(b.ws_connect())
            await subscribe(on_a, "shared")
            await subscribe(on_b, "shared", id=2)
            await subscribe(on_b, "solo", id=3)
            # solo's occupied means B's hold of it is in Redis.
            await self.wait_kinds("solo", ["occupied"], "solo occupied")
            b.signal(signal.SIGKILL)
            killed = time.monotonic()
            await asyncio.to_thread(b.wait)
            await self.wait_kinds("solo", ["occupied", "vacated"], "solo vacated",
                                  timeout=KILL_BOUND_S)
            self.assertLess(time.monotonic() - killed, KILL_BOUND_S)
            await asyncio.sleep(QUIET_S)
            events = await self.backend.events()
        self.assertEqual(["occupied", "vacated"], kinds(events, "solo"))
        # A still holds it.
        self.assertEqual(["occupied"], kinds(events, "shared"))

    async def test_a_drained_relay_s_channel_vacated_once(self):
        redis = self.start_redis()
        a = await self.start_relay(self.config(redis=redis))
        b = await self.start_relay(self.config(redis=redis))
        async with a.ws_connect() as on_a, b.ws_connect() as on_b:
            await subscribe(on_a, "stay")
            await subscribe(on_b, "drained")
            await self.wait_kinds("drained", ["occupied"], "drained occupied")
            await self.wait_kinds("stay", ["occupied"], "stay occupied")
            b.signal(signal.SIGTERM)
            self.assertEqual(0, await asyncio.to_thread(b.wait))
            await self.wait_kinds("drained", ["occupied", "vacated"], "drained vacated",
                                  timeout=QUIET_S + IO_TIMEOUT)
            await asyncio.sleep(QUIET_S)
            events = await self.backend.events()
        self.assertEqual(["occupied", "vacated"], kinds(events, "drained"))
        self.assertEqual(["occupied"], kinds(events, "stay"))
