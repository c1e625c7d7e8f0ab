"""History and recovery (docs/protocol.md "History and recovery"): messages of a channel with
history carry offset and epoch; a client that reconnects with `since` gets exactly what it missed,
or recovered:false; a rolling update of every relay loses nothing; a Redis restart without
persistence changes the epoch and is never a silent gap."""

import asyncio
import json
import shutil
import signal
import unittest

import websockets

from relay_harness import (HOST, RelayTestCase, UNMETERED, ping_barrier, recv_json, redis_overrides,
                           request, send_json)
from test_redis_cluster_mode import REDIS_CLI, start_cluster

FEED = {"pattern": "feed:*", "history_size": 1000, "history_ttl_ms": 600000}
SHORT = {"pattern": "short:*", "history_size": 3, "history_ttl_ms": 600000}
CHANNELS = {"channels": [FEED, SHORT]}
RUN_TIMEOUT = 120.0  # generous for the sanitizer build; the plain build takes a few seconds


async def subscribe_at(ws, channel, id=1, since=None):
    """Subscribes (with `since` when given) and returns (ack, messages that came before it)."""
    cmd = {"op": "subscribe", "channel": channel, "id": id}
    if since is not None:
        cmd["since"] = since
    await send_json(ws, cmd)
    before = []
    while True:
        frame = await recv_json(ws)
        if frame.get("op") == "ack" and frame.get("id") == id:
            return frame, before
        before.append(frame)


def position(frame):
    return {"offset": frame["offset"], "epoch": frame["epoch"]}


class Follower:
    """A client that follows one channel across relays: it records every number it receives,
    checks each offset is the last one + 1, and when its relay drains it reconnects to a live one
    with `since` = the last position it saw."""

    def __init__(self, test, channel, relay):
        self.test = test
        self.channel = channel
        self.relay = relay
        self.numbers = []
        self.last = None  # {"offset", "epoch"} of the last message
        self.reconnects = 0
        self.recovered = []  # the ack's "recovered" of each resubscribe

    async def connect(self):
        self.ws = await self.relay.ws_connect()
        ack, before = await subscribe_at(self.ws, self.channel, since=self.last)
        if self.last is not None:
            self.recovered.append(ack.get("recovered"))
        elif ack.get("offset") is not None:
            # A fresh subscribe learns where the channel is: recovering from there misses nothing.
            self.last = position(ack)
        for frame in before:
            self.take(frame)

    def take(self, frame):
        self.test.assertEqual("message", frame.get("op"), frame)
        pos = position(frame)
        if self.last is not None and self.last["epoch"] == pos["epoch"]:
            self.test.assertEqual(self.last["offset"] + 1, pos["offset"],
                                  f"{self.channel}: offset after {self.last}")
        self.last = pos
        self.numbers.append(frame["data"]["n"])

    async def follow(self, total, live_relays):
        """Reads until the last number of its channel (numbers n with n % 2 == its parity)."""
        parity = int(self.channel.rsplit(":", 1)[1])
        final = max(n for n in range(total) if n % 2 == parity)
        while not self.numbers or self.numbers[-1] < final:
            try:
                frame = await recv_json(self.ws, timeout=RUN_TIMEOUT)
            except websockets.ConnectionClosed:
                self.test.assertEqual(1001, self.ws.close_code)
                self.relay = next(r for r in live_relays() if r is not self.relay)
                self.reconnects += 1
                await self.connect()
                continue
            if frame == {"op": "reconnect"}:
                continue  # read on until the close: the drained relay still delivers meanwhile
            self.take(frame)


async def rolling_update(test, overrides, midway=None):
    """Three relays; followers of two channels on the first two, a publisher on the third sending
    numbered messages at a steady rate. A third of the way in, a fourth relay starts and the first
    drains; two thirds in, the second drains (`midway`, if given, runs halfway). Every follower
    ends with every number of its channel exactly once, in order, having recovered each time."""
    extra = dict(CHANNELS, **{"drain.window_ms": 300})
    relays = [await test.start_relay(overrides(extra)) for _ in range(3)]
    draining = set()

    def live():
        return [r for r in relays if r not in draining]

    total, per_relay = 600, 4
    followers = []
    for relay in relays[:2]:
        for i in range(per_relay):
            follower = Follower(test, f"feed:{i % 2}", relay)
            await follower.connect()
            followers.append(follower)
    async with relays[2].ws_connect() as publisher:
        tasks = [asyncio.create_task(f.follow(total, live)) for f in followers]
        try:
            for n in range(total):
                await send_json(publisher, {"op": "publish", "channel": f"feed:{n % 2}",
                                            "data": {"n": n}})
                if n == total // 3:
                    relays.append(await test.start_relay(overrides(extra)))
                    draining.add(relays[0])
                    relays[0].signal(signal.SIGTERM)
                if n == total // 2 and midway is not None:
                    await midway()
                if n == 2 * total // 3:
                    draining.add(relays[1])
                    relays[1].signal(signal.SIGTERM)
                await asyncio.sleep(0.003)  # a steady rate, so the drains fall mid-stream
            await asyncio.wait_for(asyncio.gather(*tasks), RUN_TIMEOUT)
        finally:
            for task in tasks:
                task.cancel()
    for follower in followers:
        parity = int(follower.channel.rsplit(":", 1)[1])
        test.assertEqual([n for n in range(total) if n % 2 == parity], follower.numbers,
                         f"{follower.channel}: every number exactly once, in order")
        test.assertGreaterEqual(follower.reconnects, 1)
        test.assertEqual([True] * follower.reconnects, follower.recovered)
    for relay in relays[:2]:
        test.assertEqual(0, await asyncio.to_thread(relay.wait))


class HistoryTest(RelayTestCase):
    relay_defaults = UNMETERED

    async def test_a_rolling_update_of_every_relay_loses_nothing(self):
        redis = self.start_redis()
        await rolling_update(self, lambda extra: redis_overrides(redis, extra))

    async def test_redis_restarted_without_persistence_is_never_a_silent_gap(self):
        redis = self.start_redis()
        relay = await self.start_relay(redis_overrides(redis, CHANNELS))
        async with relay.ws_connect() as sub, relay.ws_connect() as pub:
            ack, _ = await subscribe_at(sub, "feed:e")
            old = position(ack)
            for n in range(5):
                await request(pub, {"op": "publish", "channel": "feed:e", "data": {"n": n},
                                    "id": 10 + n})
            frames = [await recv_json(sub) for _ in range(5)]
            self.assertEqual(list(range(old["offset"] + 1, old["offset"] + 6)),
                             [f["offset"] for f in frames])
            last = position(frames[-1])

            redis.kill()
            redis.start()
            # The subscriber stays connected: its history is gone, and it is told so, with the
            # position it can recover from from now on.
            notice = await recv_json(sub, timeout=30)
            self.assertEqual("resubscribed", notice["op"], notice)
            self.assertTrue(notice["gap"])
            self.assertNotEqual(last["epoch"], notice["epoch"])
            # A client coming back with the old position hears it cannot recover.
            async with relay.ws_connect() as late:
                ack, before = await subscribe_at(late, "feed:e", since=last)
                self.assertEqual([], before)
                self.assertFalse(ack["recovered"])
                self.assertEqual(notice["epoch"], ack["epoch"])
                await request(pub, {"op": "publish", "channel": "feed:e", "data": {"n": 5},
                                    "id": 20})
                for ws in (sub, late):
                    frame = await recv_json(ws)
                    self.assertEqual({"n": 5}, frame["data"])
                    self.assertEqual(notice["epoch"], frame["epoch"])
                    self.assertEqual(notice["offset"] + 1, frame["offset"])


@unittest.skipUnless(shutil.which(REDIS_CLI), "redis-cli (redis-tools) is installed by tools/dev")
class ClusterHistoryTest(RelayTestCase):
    relay_defaults = UNMETERED

    async def test_a_rolling_update_with_a_slot_migration_loses_nothing(self):
        nodes = await start_cluster(self)
        seeds = [f"{HOST}:{n.port}" for n in nodes]

        async def migrate():
            # Moves the slot of feed:0 (its pub/sub channel and its history keys) to another
            # master, keys included, the way redis-cli --cluster reshard does.
            slot = nodes[0].command("CLUSTER", "KEYSLOT", "feed:0")
            ids = {n.port: n.command("CLUSTER", "MYID").decode() for n in nodes}
            owner = next(n for n in nodes
                         if slot in owned_slots(n.command("CLUSTER", "SHARDS"), ids[n.port]))
            target = next(n for n in nodes if n is not owner)
            target.command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[owner.port])
            owner.command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[target.port])
            keys = owner.command("CLUSTER", "GETKEYSINSLOT", slot, 100)
            test_keys = [k for k in keys if k.startswith(b"wsrelay:")]
            self.assertTrue(test_keys, f"no history keys in slot {slot}: {keys}")
            owner.command("MIGRATE", HOST, target.port, "", 0, 5000, "KEYS", *keys)
            for n in (target, owner) + tuple(n for n in nodes if n not in (target, owner)):
                n.command("CLUSTER", "SETSLOT", slot, "NODE", ids[target.port])

        await rolling_update(
            self, lambda extra: redis_overrides(nodes[0], dict(extra, **{
                "broker.redis.cluster": seeds})), midway=migrate)


def owned_slots(shards, node_id):
    """The slots CLUSTER SHARDS lists for `node_id` (RESP2: flat key/value lists)."""
    for shard in shards:
        fields = dict(zip(shard[::2], shard[1::2]))
        for node in fields[b"nodes"]:
            if dict(zip(node[::2], node[1::2]))[b"id"].decode() == node_id:
                ranges = fields[b"slots"]
                return {slot for lo, hi in zip(ranges[::2], ranges[1::2])
                        for slot in range(lo, hi + 1)}
    return set()


class MemoryHistoryTest(RelayTestCase):
    """The default single-instance mode keeps history in process."""

    async def test_reconnect_with_since_gets_exactly_what_it_missed(self):
        relay = await self.start_relay(CHANNELS)
        async with relay.ws_connect() as pub:
            async with relay.ws_connect() as sub:
                ack, _ = await subscribe_at(sub, "feed:m")
                self.assertEqual(0, ack["offset"])
                for n in range(5):
                    await request(pub, {"op": "publish", "channel": "feed:m", "data": {"n": n},
                                        "id": n + 1})
                frames = [await recv_json(sub) for _ in range(5)]
                self.assertEqual([1, 2, 3, 4, 5], [f["offset"] for f in frames])
                self.assertEqual({ack["epoch"]}, {f["epoch"] for f in frames})
                last = position(frames[-1])
            for n in range(5, 9):
                await request(pub, {"op": "publish", "channel": "feed:m", "data": {"n": n},
                                    "id": n + 1})
            async with relay.ws_connect() as back:
                ack, before = await subscribe_at(back, "feed:m", id=7, since=last)
                self.assertTrue(ack["recovered"])
                self.assertEqual({"offset": 9, "epoch": last["epoch"]}, position(ack))
                after = await ping_barrier(back)
                got = [f for f in before + after if f.get("op") == "message"]
                self.assertEqual([5, 6, 7, 8], [f["data"]["n"] for f in got])
                self.assertEqual([6, 7, 8, 9], [f["offset"] for f in got])
                # Then live, with no duplicate.
                await request(pub, {"op": "publish", "channel": "feed:m", "data": {"n": 9},
                                    "id": 99})
                frame = await recv_json(back)
                self.assertEqual((10, {"n": 9}), (frame["offset"], frame["data"]))

    async def test_more_missed_than_kept_is_not_recovered(self):
        relay = await self.start_relay(CHANNELS)
        async with relay.ws_connect() as pub, relay.ws_connect() as back:
            first = await request(pub, {"op": "history", "channel": "short:1", "id": 1})
            epoch = first["epoch"]
            for n in range(6):
                await request(pub, {"op": "publish", "channel": "short:1", "data": {"n": n},
                                    "id": n + 2})
            ack, before = await subscribe_at(back, "short:1", since={"offset": 1, "epoch": epoch})
            self.assertFalse(ack["recovered"])
            self.assertEqual({"offset": 6, "epoch": epoch}, position(ack))
            self.assertEqual([], before + await ping_barrier(back))
            # Another epoch is never recovered either.
            async with relay.ws_connect() as other:
                ack, _ = await subscribe_at(other, "short:1", since={"offset": 6, "epoch": "x1"})
                self.assertFalse(ack["recovered"])

    async def test_history_command_and_api(self):
        relay = await self.start_relay(dict(CHANNELS, **{"api.key": "k"}))
        async with relay.ws_connect() as ws:
            for n in range(4):
                await request(ws, {"op": "publish", "channel": "feed:h", "data": {"n": n},
                                   "id": n + 1})
            newest = await request(ws, {"op": "history", "channel": "feed:h", "limit": 2,
                                        "id": 10})
            self.assertEqual("history", newest["op"])
            self.assertEqual([(3, {"n": 2}), (4, {"n": 3})],
                             [(m["offset"], m["data"]) for m in newest["messages"]])
            self.assertEqual(4, newest["offset"])
            since = {"offset": 1, "epoch": newest["epoch"]}
            page = await request(ws, {"op": "history", "channel": "feed:h", "limit": 2,
                                      "since": since, "id": 11})
            self.assertEqual([2, 3], [m["offset"] for m in page["messages"]])

        status, _, body = await relay.ahttp_post(
            "/api/history", json.dumps({"channel": "feed:h", "since": since}),
            headers={"X-API-Key": "k"})
        self.assertEqual(200, status, body)
        answer = json.loads(body)
        self.assertEqual([2, 3, 4], [m["offset"] for m in answer["messages"]])
        self.assertEqual({"offset": 4, "epoch": since["epoch"]},
                         {"offset": answer["offset"], "epoch": answer["epoch"]})
        status, _, body = await relay.ahttp_post(
            "/api/history", json.dumps({"channel": "plain"}),
            headers={"X-API-Key": "k"})
        self.assertEqual(405, status, body)

    async def test_bad_history_input_gets_an_error_and_keeps_the_connection(self):
        relay = await self.start_relay(CHANNELS)
        cases = [
            ({"op": "subscribe", "channel": "feed:b", "since": {"offset": -1, "epoch": "e1"}},
             400),
            ({"op": "subscribe", "channel": "feed:b", "since": {"offset": 1.5, "epoch": "e1"}},
             400),
            ({"op": "subscribe", "channel": "feed:b", "since": {"offset": "1", "epoch": "e1"}},
             400),
            ({"op": "subscribe", "channel": "feed:b", "since": {"offset": 1, "epoch": "no-no"}},
             400),
            ({"op": "subscribe", "channel": "feed:b", "since": {"offset": 1, "epoch": "e" * 33}},
             400),
            ({"op": "subscribe", "channel": "feed:b", "since": 5}, 400),
            ({"op": "subscribe", "channel": "plain", "since": {"offset": 1, "epoch": "e1"}}, 405),
            ({"op": "history", "channel": "plain"}, 405),
            ({"op": "history", "channel": "feed:b", "limit": 0}, 400),
            ({"op": "history", "channel": "feed:b", "limit": 5000}, 413),
        ]
        async with relay.ws_connect() as ws:
            for i, (cmd, code) in enumerate(cases):
                reply = await request(ws, dict(cmd, id=100 + i))
                self.assertEqual("error", reply["op"], cmd)
                self.assertEqual(code, reply["code"], (cmd, reply))
            # Still connected, and still nothing subscribed.
            self.assertEqual([], await ping_barrier(ws))
            ack, _ = await subscribe_at(ws, "feed:b", id=7)
            self.assertEqual(0, ack["offset"])


if __name__ == "__main__":
    unittest.main()
