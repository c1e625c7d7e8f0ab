"""Backends in other languages publishing into channels with history through the relay's Redis
function (docs/scaling.md "History"): Python with Debian's python3-redis, Node with `redis` from
npm. Their messages reach subscribers with offsets, in the same sequence as the relay's own."""

import asyncio
import json
import os
import shutil
import subprocess
import unittest

from relay_harness import RelayTestCase, recv_json, redis_overrides, send_json
from test_history_recovery import CHANNELS, FEED, subscribe_at

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "backends", "node")
INSTALL_TIMEOUT = 300


def node_backend():
    """The Node backend's directory, its npm packages installed from the lockfile when missing
    (as tests/helm/run.sh does for the chart validator)."""
    if not shutil.which("node") or not shutil.which("npm"):
        raise unittest.SkipTest("node and npm are installed by tools/dev")
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "redis")):
        done = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR,
                              capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
        if done.returncode != 0:
            raise AssertionError(f"npm ci failed:\n{done.stdout}{done.stderr}")
    return NODE_DIR


class HistoryBackendsTest(RelayTestCase):
    async def test_python_and_node_backends_publish_with_offsets(self):
        import redis  # Debian's python3-redis (tests run with /usr/bin/python3)

        backend_dir = node_backend()
        server = self.start_redis()
        relay = await self.start_relay(redis_overrides(server, CHANNELS))
        size, ttl = str(FEED["history_size"]), str(FEED["history_ttl_ms"])
        async with relay.ws_connect() as ws:
            ack, _ = await subscribe_at(ws, "feed:backends")
            start = ack["offset"]

            client = redis.Redis(host="127.0.0.1", port=server.port)
            try:
                offset, epoch, trimmed = await asyncio.to_thread(
                    client.fcall, "wsrelay_publish", 1, "feed:backends", '{"from":"python"}',
                    size, ttl)
            finally:
                client.close()
            self.assertEqual(start + 1, offset)
            self.assertEqual(ack["epoch"], epoch.decode())
            self.assertEqual(0, trimmed)  # XTRIM MAXLEN ~ deletes whole stream nodes only

            done = await asyncio.to_thread(
                subprocess.run, ["node", "publish.mjs", server.url, "feed:backends",
                                 '{"from":"node"}', size, ttl],
                cwd=backend_dir, capture_output=True, text=True, timeout=60)
            self.assertEqual(0, done.returncode, done.stdout + done.stderr)
            self.assertEqual([start + 2, ack["epoch"], 0], json.loads(done.stdout))

            # The relay's own publish continues the same sequence.
            await send_json(ws, {"op": "publish", "channel": "feed:backends",
                                 "data": {"from": "relay"}, "id": 5})
            # The relay's ack of its publish comes before or after the message: set it aside.
            frames, acks = [], []
            while len(frames) < 3 or not acks:
                frame = await recv_json(ws)
                (acks if frame == {"op": "ack", "id": 5} else frames).append(frame)
            self.assertEqual(1, len(acks))
            self.assertEqual([(start + 1, {"from": "python"}), (start + 2, {"from": "node"}),
                              (start + 3, {"from": "relay"})],
                             [(f["offset"], f["data"]) for f in frames])
            self.assertEqual({ack["epoch"]}, {f["epoch"] for f in frames})

            # A plain PUBLISH still reaches the channel, without a position.
            await server.apublish("feed:backends", '{"from":"plain"}')
            frame = await recv_json(ws)
            self.assertEqual({"op": "message", "channel": "feed:backends",
                              "data": {"from": "plain"}}, frame)


if __name__ == "__main__":
    unittest.main()
