"""Two relays on a real three-master Redis Cluster (sharded pub/sub), and the HTTP publish API
reaching another instance through Redis."""

import asyncio
import json
import shutil
import subprocess
import unittest

from relay_harness import (HOST, IO_TIMEOUT, RelayTestCase, UNMETERED, free_port, ping_barrier,
                           recv_json, redis_overrides, subscribe, wait_until)
from test_http_api import post

REDIS_CLI = "/usr/bin/redis-cli"
CHANNELS = ["room:a", "room:b", "room:c", "room:d", "room:e", "room:f"]  # spread over the slots
PER_CHANNEL = 50


async def start_cluster(test):
    """A three-master Redis Cluster of `test`'s redis-servers (stopped with the test)."""
    nodes = [test.start_redis(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                               "--cluster-port", str(free_port()),
                               "--cluster-node-timeout", "2000"]) for _ in range(3)]
    create = [REDIS_CLI, "--cluster", "create"] + [f"{HOST}:{n.port}" for n in nodes] + [
        "--cluster-replicas", "0", "--cluster-yes"]
    done = await asyncio.to_thread(subprocess.run, create, capture_output=True, text=True,
                                   timeout=60)
    test.assertEqual(0, done.returncode, done.stdout + done.stderr)
    for n in nodes:
        await wait_until(lambda n=n: b"cluster_state:ok" in n.command("CLUSTER", "INFO"),
                         timeout=30, what=f"cluster_state:ok on {n.port}")
    return nodes


@unittest.skipUnless(shutil.which(REDIS_CLI), "redis-cli (redis-tools) is installed by tools/dev")
class RedisClusterModeTest(RelayTestCase):
    relay_defaults = UNMETERED

    async def start_cluster(self):
        return await start_cluster(self)

    async def test_two_relays_exchange_messages_through_sharded_pubsub(self):
        nodes = await self.start_cluster()
        seeds = [f"{HOST}:{n.port}" for n in nodes]
        overrides = redis_overrides(nodes[0], {"broker.redis.cluster": seeds})
        relays = [await self.start_relay(overrides) for _ in range(2)]
        for relay in relays:
            await self.wait_ready(relay)

        async with relays[0].ws_connect() as a, relays[1].ws_connect() as b:
            for ws in (a, b):
                for i, channel in enumerate(CHANNELS):
                    await subscribe(ws, channel, id=i + 1)
            # Every channel is subscribed on the master that owns its slot, by both relays.
            for channel in CHANNELS:
                await wait_until(lambda c=channel: self.shard_subscribers(nodes, c) >= 2,
                                 timeout=IO_TIMEOUT, what=f"SHARDNUMSUB {channel} >= 2")

            for sender, tag in ((a, "a"), (b, "b")):
                for seq in range(PER_CHANNEL):
                    for channel in CHANNELS:
                        await sender.send(json.dumps({"op": "publish", "channel": channel,
                                                      "data": {"from": tag, "seq": seq}}))
            expected = 2 * PER_CHANNEL * len(CHANNELS)
            for ws in (a, b):
                seen = {}
                for _ in range(expected):
                    msg = await recv_json(ws)
                    key = (msg["channel"], msg["data"]["from"])
                    # Per publisher and channel, order is kept and nothing repeats.
                    self.assertEqual(seen.get(key, -1) + 1, msg["data"]["seq"], msg)
                    seen[key] = msg["data"]["seq"]
                self.assertEqual(2 * len(CHANNELS), len(seen))
                self.assertEqual([], await ping_barrier(ws))

            # A backend SPUBLISH (redis-cli follows MOVED with -c) reaches both relays.
            done = await asyncio.to_thread(
                subprocess.run, [REDIS_CLI, "-c", "-p", str(nodes[0].port), "SPUBLISH", "room:f",
                                 '{"backend":true}'], capture_output=True, text=True, timeout=10)
            self.assertEqual(0, done.returncode, done.stderr)
            for ws in (a, b):
                self.assertEqual({"op": "message", "channel": "room:f", "data": {"backend": True}},
                                 await recv_json(ws))

    def shard_subscribers(self, nodes, channel):
        return sum(int(n.command("PUBSUB", "SHARDNUMSUB", channel)[1]) for n in nodes)

    async def wait_ready(self, relay):
        await wait_until(lambda: relay.http_get("/readyz")[0] == 200, timeout=IO_TIMEOUT * 2,
                         what="/readyz 200")


class HttpApiThroughRedisTest(RelayTestCase):
    async def test_api_publish_on_one_instance_reaches_clients_of_another(self):
        redis = self.start_redis()
        overrides = redis_overrides(redis, {"api.key": "k"})
        first, second = [await self.start_relay(overrides) for _ in range(2)]
        async with second.ws_connect() as ws:
            await subscribe(ws, "news")
            await wait_until(lambda: redis.numsub("news") >= 1, what="NUMSUB news >= 1")
            status, body = await asyncio.to_thread(post, first.port, "/api/publish",
                                                   {"channel": "news", "data": [1, 2]}, "k")
            self.assertEqual((200, {"ok": True, "channels": 1}), (status, body))
            self.assertEqual({"op": "message", "channel": "news", "data": [1, 2]},
                             await recv_json(ws))
            status, _ = await asyncio.to_thread(post, first.port, "/api/publish",
                                                {"channel": "news", "data": 3}, "wrong")
            self.assertEqual(401, status)
            self.assertEqual([], await ping_barrier(ws))


if __name__ == "__main__":
    unittest.main()
