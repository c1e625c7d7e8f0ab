"""The HTTP hook (docs/hook.md) end to end against the example chat backends of docs/examples,
each run as a separate process: Node (node:http) and Python (standard library). Every test runs
against both."""

import asyncio
import json
import os
import queue
import shutil
import signal
import subprocess
import threading
import time
import unittest
import urllib.request

import websockets

from relay_harness import (HOST, IO_TIMEOUT, RelayTestCase, UNMETERED, metric, ping_barrier,
                           recv_json, request, send_json, subscribe, wait_until)

SOURCE_DIR = os.environ.get("WSRELAY_SOURCE_DIR",
                            os.path.join(os.path.dirname(__file__), "..", ".."))
SECRET = "hook-test-secret"


class Backend:
    """One example backend process; its stdout lines (one per hook request) are kept in order."""

    def __init__(self, kind, port=0, secret=SECRET):
        self.kind, self.port, self.secret = kind, port, secret
        self.lines = queue.Queue()
        self.seen = []
        self.proc = None

    def command(self):
        if self.kind == "node":
            return [shutil.which("node") or "node",
                    os.path.join(SOURCE_DIR, "docs/examples/hook-node/server.js"), str(self.port)]
        return ["/usr/bin/python3", os.path.join(SOURCE_DIR, "docs/examples/hook-python/server.py"),
                str(self.port)]

    def start(self):
        env = dict(os.environ, HOOK_SECRET=self.secret, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env, text=True)
        threading.Thread(target=self._pump, args=(self.proc,), daemon=True).start()
        line = self.lines.get(timeout=IO_TIMEOUT)
        if not line.startswith("listening "):
            raise AssertionError(f"backend said {line!r}")
        self.port = int(line.split()[1])
        return self

    def _pump(self, proc):
        for line in proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=IO_TIMEOUT)

    def url(self):
        return f"http://{HOST}:{self.port}/ws-hook"

    def stats(self):
        with urllib.request.urlopen(f"http://{HOST}:{self.port}/stats", timeout=IO_TIMEOUT) as r:
            return json.loads(r.read())

    def output(self):
        while True:
            try:
                self.seen.append(self.lines.get_nowait())
            except queue.Empty:
                return list(self.seen)


class HookMixin:
    KIND = None

    async def start_pair(self, extra=None, secret=SECRET):
        backend = Backend(self.KIND, secret=SECRET).start()
        self.addCleanup(backend.stop)
        config = {"hook.url": backend.url(), "hook.secret": secret, "hook.timeout_ms": 1000,
                  "hook.routes": ["chat:*=hook"]}
        config.update(extra or {})
        relay = await self.start_relay(config)
        return backend, relay

    async def connect(self, relay, **kwargs):
        ws = await relay.ws_connect(**kwargs).__aenter__()
        self.addAsyncCleanup(ws.close)
        self.assertEqual({"op": "subscribed", "channel": "lobby"}, await recv_json(ws))
        return ws

    async def test_round_trip_with_commands(self):
        backend, relay = await self.start_pair()
        a, b = await self.connect(relay), await self.connect(relay)
        for ws in (a, b):
            await subscribe(ws, "chat:room1")
        reply = await request(a, {"op": "publish", "channel": "chat:room1",
                                  "data": {"text": "hi"}, "id": 2})
        self.assertEqual({"op": "ack", "id": 2}, reply)
        for ws in (a, b):
            msg = await recv_json(ws)
            self.assertEqual("chat:room1", msg["channel"])
            self.assertEqual("hi", msg["data"]["text"])
            self.assertEqual(1, msg["data"]["seq"])
            self.assertTrue(msg["data"]["from"].startswith("guest-"))
        nick = await request(a, {"op": "publish", "channel": "chat:room1",
                                 "data": {"text": "/nick ann"}, "id": 3})
        self.assertEqual({"op": "reply", "id": 3, "data": {"ok": True}}, nick)
        await request(a, {"op": "publish", "channel": "chat:room1", "data": {"text": "x"}, "id": 4})
        for ws in (a, b):
            self.assertEqual("ann", (await recv_json(ws))["data"]["from"])
        whoami = await request(a, {"op": "send", "data": {"cmd": "whoami"}, "id": 5})
        self.assertEqual("ann", whoami["data"]["meta"]["name"])
        echo = await request(a, {"op": "send", "data": {"cmd": "echo", "value": [1, {"x": 2}]},
                                 "id": 6})
        self.assertEqual({"op": "reply", "id": 6, "data": [1, {"x": 2}]}, echo)
        unknown = await request(a, {"op": "send", "data": {"cmd": "nope"}, "id": 7})
        self.assertEqual((404, "unknown command"), (unknown["code"], unknown["reason"]))
        empty = await request(b, {"op": "publish", "channel": "chat:room1",
                                  "data": {"text": ""}, "id": 8})
        self.assertEqual((400, "empty message"), (empty["code"], empty["reason"]))
        m = await relay.ametrics()
        self.assertGreater(metric(m, "wsrelay_hook_request_duration_seconds_count",
                                  event="message"), 0)

    async def test_connect_deny_is_a_403_before_the_upgrade(self):
        backend, relay = await self.start_pair()
        status, _, body = await relay.ahttp_upgrade(headers={"User-Agent": "banned-agent/1"})
        self.assertEqual(403, status)
        self.assertEqual({"error": "forbidden", "reason": "banned"}, json.loads(body))
        m = await relay.ametrics()
        self.assertEqual(1, metric(m, "wsrelay_handshakes_total", result="hook"))
        self.assertEqual(1, metric(m, "wsrelay_hook_requests_total", event="connect",
                                   result="denied"))

    async def test_subscribe_deny_subscribes_nothing(self):
        backend, relay = await self.start_pair({"api.key": "k"})
        ws = await self.connect(relay)
        refused = await request(ws, {"op": "subscribe", "channel": "private:other", "id": 1})
        self.assertEqual(("error", 403), (refused["op"], refused["code"]))
        user = (await request(ws, {"op": "send", "data": {"cmd": "whoami"}, "id": 2}))["data"]["user"]
        await subscribe(ws, f"private:{user}", id=3)
        for channel in ("private:other", f"private:{user}"):
            status, _, _ = await relay.ahttp_post("/api/publish", {"channel": channel, "data": channel},
                                                  headers={"X-API-Key": "k"})
            self.assertEqual(200, status)
        # Published in that order: the first message to arrive must be the allowed channel's.
        self.assertEqual(f"private:{user}", (await recv_json(ws))["channel"])
        self.assertEqual([], await ping_barrier(ws))

    async def test_timeout_and_5xx_keep_the_connection_and_others_flowing(self):
        backend, relay = await self.start_pair()
        slow, other = await self.connect(relay), await self.connect(relay)
        await send_json(slow, {"op": "publish", "channel": "chat:r", "data": {"text": "slow"},
                               "id": 1})
        # While the slow request is pending, another connection's requests are answered.
        echo = await request(other, {"op": "send", "data": {"cmd": "echo", "value": 1}, "id": 1})
        self.assertEqual(1, echo["data"])
        timeout = await recv_json(slow, timeout=IO_TIMEOUT)
        self.assertEqual((1, 502, "hook timeout"), (timeout["id"], timeout["code"], timeout["reason"]))
        crash = await request(slow, {"op": "publish", "channel": "chat:r", "data": {"text": "crash"},
                                     "id": 2})
        # A 5xx: 502 with the app's own message.
        self.assertEqual((502, "crashed on purpose"), (crash["code"], crash["reason"]))
        ok = await request(slow, {"op": "send", "data": {"cmd": "echo", "value": 2}, "id": 3})
        self.assertEqual(2, ok["data"])
        m = await relay.ametrics()
        self.assertEqual(1, metric(m, "wsrelay_hook_requests_total", event="message",
                                   result="timeout"))

    async def test_hook_killed_and_restarted(self):
        backend, relay = await self.start_pair()
        ws = await self.connect(relay)
        port = backend.port
        backend.stop()
        down = await request(ws, {"op": "send", "data": {"cmd": "echo", "value": 1}, "id": 1})
        self.assertEqual((502, "hook unavailable"), (down["code"], down["reason"]))
        status, _, _ = await relay.ahttp_upgrade()
        self.assertEqual(503, status)
        again = Backend(self.KIND, port=port).start()
        self.addCleanup(again.stop)
        up = await request(ws, {"op": "send", "data": {"cmd": "echo", "value": 2}, "id": 2})
        self.assertEqual({"op": "reply", "id": 2, "data": 2}, up)
        await self.connect(relay)

    async def test_per_connection_order_under_load(self):
        backend, relay = await self.start_pair({"workers": 2})
        watcher = await self.connect(relay)
        await subscribe(watcher, "chat:load")
        senders = [await self.connect(relay) for _ in range(5)]
        count = 300

        window = 32  # below the 64 events a connection may have waiting (more get 503 hook busy)

        async def burst(ws):
            acks = []
            sent = 0
            while len(acks) < count:
                while sent < count and sent - len(acks) < window:
                    sent += 1
                    await send_json(ws, {"op": "publish", "channel": "chat:load",
                                         "data": {"text": "x", "n": sent}, "id": sent})
                acks.append(await recv_json(ws, timeout=30))
            self.assertEqual(list(range(1, count + 1)), [a["id"] for a in acks])
            self.assertTrue(all(a["op"] == "ack" for a in acks), acks[:3])

        await asyncio.gather(*(burst(ws) for ws in senders))
        last = {}
        for _ in range(count * len(senders)):
            data = (await recv_json(watcher, timeout=30))["data"]
            self.assertGreater(data["seq"], last.get(data["from"], 0))
            last[data["from"]] = data["seq"]
        self.assertEqual(len(senders), len(last))
        self.assertFalse([l for l in backend.output() if l.startswith("order-violation")])

    async def test_wrong_secret_is_refused_by_the_backend(self):
        backend, relay = await self.start_pair({"hook.events": ["subscribe", "message"]},
                                               secret="not-the-secret")
        async with relay.ws_connect() as ws:
            refused = await request(ws, {"op": "send", "data": {"cmd": "whoami"}, "id": 1})
            self.assertEqual((401, "bad signature"), (refused["code"], refused["reason"]))
        await wait_until(lambda: any(l.startswith("message") and l.endswith("badsig")
                                     for l in backend.output()), IO_TIMEOUT, "a badsig line")

    async def test_every_connect_gets_a_disconnect_including_at_drain(self):
        backend, relay = await self.start_pair({"drain.window_ms": 200})
        clients = [await self.connect(relay) for _ in range(4)]
        await clients[0].close()
        kicked = clients[1]
        reply = await request(kicked, {"op": "send", "data": {"cmd": "kick"}, "id": 1})
        self.assertEqual("reply", reply["op"])
        with self.assertRaises(websockets.ConnectionClosed) as closed:
            await recv_json(kicked)
        self.assertEqual((4000, "kicked"), (closed.exception.code, closed.exception.reason))
        relay.signal(signal.SIGTERM)
        await asyncio.to_thread(relay.wait)
        stats = backend.stats()
        self.assertEqual(4, stats["connects"])
        self.assertEqual(stats["connects"], stats["disconnects"])


@unittest.skipUnless(shutil.which("node"), "node is not installed")
class NodeHookTest(HookMixin, RelayTestCase):
    relay_defaults = UNMETERED

    KIND = "node"


class PythonHookTest(HookMixin, RelayTestCase):
    relay_defaults = UNMETERED

    KIND = "python"


if __name__ == "__main__":
    unittest.main()
