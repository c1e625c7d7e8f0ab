"""Network faults between real processes in network namespaces (run through run.sh, which makes
them): Redis unreachable for 5 s with its packets dropped, not refused, and clients cut from the
relay. Links are cut by a qdisc that drops everything on both ends (WSRELAY_CHAOS_DROP).

Layout (run.sh): the relay and this process in the test's namespace, the relay on 10.200.0.1;
redis-server in netns wsr-redis (10.200.1.2); clients in netns wsr-cut and wsr-keep, and in the
test's namespace. A client in another namespace is a socket made by a thread that joined that
namespace (setns), then handed to websockets."""

import asyncio
import ctypes
import json
import os
import socket
import subprocess
import threading
import time
import unittest

import websockets

import relay_harness
from relay_harness import IO_TIMEOUT, RelayTestCase, RespConnection, metric, wait_until

RELAY_ADDRESS = "10.200.0.1"
REDIS_NETNS, REDIS_ADDRESS, REDIS_PORT = "wsr-redis", "10.200.1.2", 6379
LINKS = {  # the two ends of each veth pair: (netns or None for the test's own, interface)
    "redis": ((None, "vr0"), (REDIS_NETNS, "vr1")),
    "cut": ((None, "vc0"), ("wsr-cut", "vc1")),
}
DROP = os.environ.get("WSRELAY_CHAOS_DROP", "pfifo limit 0").split()
OUTAGE_S = 5.0
API_KEY = "chaos-api-key"
HISTORY = {"pattern": "hist:*", "history_size": 2000, "history_ttl_ms": 600000}
RECOVERY_TIMEOUT = 20.0  # reconnect waits are capped at 200 ms; the rest is sanitizer headroom
# Added to every bound the configuration gives: the /readyz and /metrics polling (50 ms), the
# timers' and the loop's own granularity, and a loaded 2-core machine. The bound under test stays
# well apart from what a broken relay would show (never 503, or closed only by TCP's timers).
SLACK_S = 0.75

_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNET = 0x40000000


def in_netns(netns, fn):
    """Calls fn() on a thread that has joined network namespace `netns` (a name under
    /run/netns); a socket fn makes stays in that namespace wherever it is used later."""
    out = {}

    def run():
        try:
            fd = os.open(f"/run/netns/{netns}", os.O_RDONLY)
            try:
                if _libc.setns(fd, _CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns {netns}: {os.strerror(err)}")
            finally:
                os.close(fd)
            out["value"] = fn()
        except BaseException as e:  # handed to the caller's thread
            out["error"] = e

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["value"]


def tc(netns, *args):
    cmd = ["tc"] + (["-n", netns] if netns else []) + list(args)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}: {done.stderr.strip()}")


def cut(link):
    """Drops every packet on both ends of the link from now on: nothing is refused or reset."""
    for netns, dev in LINKS[link]:
        tc(netns, "qdisc", "replace", "dev", dev, "root", *DROP)


def restore(link):
    for netns, dev in LINKS[link]:
        tc(netns, "qdisc", "del", "dev", dev, "root")


class NetnsRedis:
    """redis-server in netns wsr-redis on 10.200.1.2 (and 127.0.0.1 there, for a publisher on the
    Redis side of the link), no persistence, stopped by PID."""

    def __init__(self):
        self.proc = None
        self.log = b""

    def start(self):
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", REDIS_NETNS, relay_harness.REDIS_SERVER,
             "--bind", REDIS_ADDRESS, "127.0.0.1", "--port", str(REDIS_PORT), "--save", "",
             "--appendonly", "no", "--logfile", "",
             # Not reachable from outside the test's namespaces; the relay is not on loopback.
             "--protected-mode", "no"],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + relay_harness.READY_TIMEOUT
        while True:
            try:
                if self.command("PING") == "PONG":
                    return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"redis-server did not start:\n{self.stop()}")
            time.sleep(0.02)  # bounded poll of connect+PING, with the deadline above

    def connect(self):
        """A RESP connection made on the Redis side of the link (not affected by a cut)."""
        return in_netns(REDIS_NETNS, lambda: RespConnection(REDIS_PORT, host="127.0.0.1"))

    def command(self, *args):
        with self.connect() as conn:
            return conn.command(*args)

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
            try:
                self.log, _ = self.proc.communicate(timeout=relay_harness.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.log, _ = self.proc.communicate()
            self.proc = None
        return self.log.decode("utf-8", "replace")


class Client:
    """A websockets client whose frames one reader task sorts: messages by channel, answers by
    id, anything else kept aside. Waiters are woken on every frame and on the close."""

    def __init__(self, name, ws):
        self.name = name
        self.ws = ws
        self.messages = {}  # channel -> [(offset, epoch, data)]
        self.other = []
        self.answers = {}
        self.next_id = 1
        self.closed_at = None
        self.changed = asyncio.Condition()
        self.reader = asyncio.create_task(self._read())

    async def _read(self):
        try:
            async for raw in self.ws:
                frame = json.loads(raw)
                if frame.get("op") == "message":
                    entry = (frame.get("offset"), frame.get("epoch"), frame["data"])
                    self.messages.setdefault(frame["channel"], []).append(entry)
                elif "id" in frame:
                    self.answers[frame["id"]] = frame
                else:
                    self.other.append(frame)
                async with self.changed:
                    self.changed.notify_all()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed_at = time.monotonic()
            async with self.changed:
                self.changed.notify_all()

    async def wait_for(self, predicate, timeout=IO_TIMEOUT, what="condition"):
        async with self.changed:
            try:
                await asyncio.wait_for(self.changed.wait_for(predicate), timeout)
            except asyncio.TimeoutError:
                raise AssertionError(f"{self.name}: {what} not met within {timeout}s") from None

    async def request(self, command, timeout=IO_TIMEOUT):
        id_ = self.next_id
        self.next_id += 1
        await self.ws.send(json.dumps({**command, "id": id_}))
        await self.wait_for(lambda: id_ in self.answers or self.closed_at is not None, timeout,
                            f"an answer to {command}")
        if id_ not in self.answers:
            raise AssertionError(f"{self.name}: closed ({self.ws.close_code}) before answering")
        return self.answers.pop(id_)

    def offsets(self, channel):
        return [offset for offset, _, _ in self.messages.get(channel, [])]

    async def close(self):
        self.ws.transport.abort()  # no closing handshake: the link may be cut
        await asyncio.wait_for(self.reader, IO_TIMEOUT)


async def connect(relay, name, netns=None):
    """A client of `relay` from the test's namespace, or from `netns`. Its own pings are off, so
    only the relay's keep the connection alive; websockets answers those by itself."""
    sock = None
    if netns is not None:
        sock = await asyncio.to_thread(
            in_netns, netns,
            lambda: socket.create_connection((RELAY_ADDRESS, relay.port), timeout=IO_TIMEOUT))
        sock.setblocking(False)
    ws = await relay.ws_connect(ping_interval=None, sock=sock)
    return Client(name, ws)


class ChaosTest(RelayTestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.exists(f"/run/netns/{REDIS_NETNS}"):
            raise unittest.SkipTest("run through tests/chaos/run.sh, which makes the namespaces")
        # The relay listens on, and the harness talks to, the address the other namespaces reach.
        relay_harness.HOST = RELAY_ADDRESS

    def setUp(self):
        super().setUp()
        self.clients = []
        self.cut_links = []

    async def asyncTearDown(self):
        for link in self.cut_links:
            await asyncio.to_thread(restore, link)
        for client in self.clients:
            await client.close()
        await super().asyncTearDown()

    async def connect(self, relay, name, netns=None):
        client = await connect(relay, name, netns)
        self.clients.append(client)
        return client

    def _print_logs(self):
        super()._print_logs()
        redis = getattr(self, "netns_redis", None)
        if redis is not None:
            print(f"\n----- redis-server log -----\n{redis.stop()}\n-----")

    async def cut(self, link):
        await asyncio.to_thread(cut, link)
        self.cut_links.append(link)

    async def restore(self, link):
        await asyncio.to_thread(restore, link)
        self.cut_links.remove(link)

    async def readyz(self, relay):
        status, _, body = await relay.ahttp_get("/readyz", timeout=2)
        return status, json.loads(body)

    async def test_redis_unreachable_for_5s(self):
        redis = NetnsRedis()
        self.netns_redis = redis
        self.addCleanup(redis.stop)
        await asyncio.to_thread(redis.start)
        interval_ms, timeout_ms = 250, 1000
        relay = await self.start_relay({
            "broker.type": "redis",
            "broker.redis.url": f"redis://{REDIS_ADDRESS}:{REDIS_PORT}/0",
            "broker.redis.reconnect_min_ms": 20,
            "broker.redis.reconnect_max_ms": 200,
            "broker.redis.probe_interval_ms": interval_ms,
            "broker.redis.probe_timeout_ms": timeout_ms,
            "api.key": API_KEY,
            "channels": [HISTORY],
        })
        await wait_until(lambda: relay.http_get("/readyz")[0] == 200, RECOVERY_TIMEOUT,
                         what="/readyz 200")

        # Subscribers in the test's namespace and in another one, spread over both workers.
        subscribers = []
        for i in range(4):
            client = await self.connect(relay, f"sub{i}", "wsr-keep" if i % 2 else None)
            positions = {}
            for channel in ("hist:feed", "hist:api"):
                ack = await client.request({"op": "subscribe", "channel": channel})
                self.assertEqual("ack", ack["op"], ack)
                positions[channel] = (ack["offset"], ack["epoch"])
            subscribers.append((client, positions))
        before = await relay.ametrics()
        connections = metric(before, "wsrelay_connections")

        # A backend on the Redis side of the link publishes into the history with the relay's
        # Redis function all along (the outage does not touch it); an HTTP client publishes
        # through the relay's API and retries what is refused while Redis is away.
        stop = threading.Event()
        feed = {}  # offset -> data, as Redis answered
        feed_epoch = set()

        def backend():
            with redis.connect() as conn:
                n = 0
                while not stop.is_set():
                    offset, epoch, _ = conn.command(
                        "FCALL", "wsrelay_publish", 1, "hist:feed", json.dumps({"n": n}),
                        HISTORY["history_size"], HISTORY["history_ttl_ms"])
                    feed[offset] = {"n": n}
                    feed_epoch.add(epoch.decode())
                    n += 1
                    stop.wait(0.05)  # 20 messages/s

        api = {"answered": {}, "tried": set(), "refused": 0, "other": []}

        def api_publisher():
            n = 0
            while not stop.is_set():
                api["tried"].add(n)
                try:
                    status, _, body = relay.http_post(
                        "/api/publish", {"channel": "hist:api", "data": {"n": n}},
                        {"X-API-Key": API_KEY}, timeout=3)
                except OSError as e:  # no answer: try again, the message may be stored
                    api["other"].append(repr(e))
                    continue
                if status == 200:
                    answer = json.loads(body)
                    api["answered"][answer["offset"]] = {"n": n}
                    n += 1
                    stop.wait(0.1)  # 10 messages/s
                elif status == 503:
                    api["refused"] += 1
                    stop.wait(0.05)
                else:
                    api["other"].append((status, body))
                    stop.wait(0.05)

        publishers = [asyncio.create_task(asyncio.to_thread(backend)),
                      asyncio.create_task(asyncio.to_thread(api_publisher))]
        try:
            # Messages flow before the fault.
            for client, _ in subscribers:
                await client.wait_for(lambda c=client: len(c.offsets("hist:feed")) >= 10 and
                                      len(c.offsets("hist:api")) >= 5, RECOVERY_TIMEOUT,
                                      "messages before the fault")

            await self.cut("redis")
            cut_at = time.monotonic()
            status, body = await wait_until(
                self._not_ready(relay), RECOVERY_TIMEOUT, what="/readyz 503", interval=0.05)
            not_ready_s = time.monotonic() - cut_at
            self.assertIn("broker", body["reason"])
            bound = (interval_ms + timeout_ms) / 1000
            self.assertLessEqual(not_ready_s, bound + SLACK_S,
                                 f"/readyz turned 503 {not_ready_s:.2f}s after the cut")

            # The outage itself is a fixed time. Meanwhile the relay stays not ready, and keeps
            # every client: each still answers a ping op.
            await asyncio.sleep(max(0.0, cut_at + OUTAGE_S - time.monotonic()))
            self.assertEqual(503, (await self.readyz(relay))[0])
            for client, _ in subscribers:
                self.assertEqual("pong", (await client.request({"op": "ping"}))["op"])
            await self.restore("redis")
            restored_at = time.monotonic()
            await wait_until(self._ready(relay), RECOVERY_TIMEOUT, what="/readyz 200",
                             interval=0.05)
            ready_again_s = time.monotonic() - restored_at

            # Publishing goes on a while after the recovery, then stops.
            feed_at_ready = len(feed)
            await wait_until(lambda: len(feed) >= feed_at_ready + 20, RECOVERY_TIMEOUT,
                             what="20 more backend publishes")
        finally:
            stop.set()
            await asyncio.gather(*publishers)

        # Every subscriber gets every message of both channels exactly once, in offset order,
        # with what was published at that offset; the relay recovered them without a notice.
        self.assertEqual(1, len(feed_epoch), feed_epoch)
        self.assertGreater(api["refused"], 0, "the API was never refused during the outage")
        last = {"hist:feed": max(feed), "hist:api": max(api["answered"])}
        for client, positions in subscribers:
            for channel in last:
                await client.wait_for(
                    lambda c=client, ch=channel: (c.offsets(ch) or [0])[-1] >= last[ch],
                    RECOVERY_TIMEOUT, f"{channel} up to offset {last[channel]}")
            for channel, (start, epoch) in positions.items():
                got = client.messages[channel]
                self.assertEqual(list(range(start + 1, start + 1 + len(got))),
                                 [offset for offset, _, _ in got],
                                 f"{client.name} {channel}: offsets lost, repeated or reordered")
                self.assertEqual({epoch}, {e for _, e, _ in got})
            self.assertEqual([feed[o] for o, _, _ in client.messages["hist:feed"]],
                             [d for _, _, d in client.messages["hist:feed"]])
            for offset, _, data in client.messages["hist:api"]:
                # A retried publish may have been stored once before its answer was lost: it is
                # then there twice, at two offsets. What was answered is exactly where it said.
                if offset in api["answered"]:
                    self.assertEqual(api["answered"][offset], data)
                else:
                    self.assertIn(data["n"], api["tried"])
            got_n = {d["n"] for _, _, d in client.messages["hist:api"]}
            self.assertTrue({d["n"] for d in api["answered"].values()} <= got_n)
            self.assertEqual([], client.other, f"{client.name}: unexpected frames")
            self.assertIsNone(client.closed_at, f"{client.name} was closed")

        after = await relay.ametrics()
        self.assertEqual(connections, metric(after, "wsrelay_connections"))
        self.assertEqual(sum(v for k, v in before.items()
                             if k.startswith("wsrelay_disconnects_total")),
                         sum(v for k, v in after.items()
                             if k.startswith("wsrelay_disconnects_total")))
        print(f"\n    redis cut: /readyz 503 after {not_ready_s:.2f}s (bound {bound:.2f}s "
              f"+ {SLACK_S}s), 200 again {ready_again_s:.2f}s after the restore; "
              f"{len(feed)} backend and {len(api['answered'])} API messages "
              f"({api['refused']} API publishes refused, retried), none lost",
              flush=True)

    @staticmethod
    def _not_ready(relay):
        async def check():
            status, _, body = await relay.ahttp_get("/readyz", timeout=2)
            return (status, json.loads(body)) if status == 503 else None
        return check

    @staticmethod
    def _ready(relay):
        async def check():
            status, _, _ = await relay.ahttp_get("/readyz", timeout=2)
            return status == 200
        return check

    async def test_clients_cut_from_the_relay(self):
        interval_ms, pong_ms = 1000, 1000
        relay = await self.start_relay({
            "websocket.ping_interval_ms": interval_ms,
            "websocket.pong_timeout_ms": pong_ms,
        })
        cut_clients = [await self.connect(relay, f"cut{i}", "wsr-cut") for i in range(3)]
        kept = [await self.connect(relay, "keep0", "wsr-keep"),
                await self.connect(relay, "keep1", "wsr-keep"),
                await self.connect(relay, "local")]
        for client in cut_clients + kept:
            self.assertEqual("ack", (await client.request(
                {"op": "subscribe", "channel": "live"}))["op"])
        series = await relay.wait_metric(lambda s: metric(s, "wsrelay_connections") == 6,
                                         what="6 connections")
        closed_4002 = metric(series, "wsrelay_disconnects_total", code="4002")
        total_closed = sum(v for k, v in series.items()
                           if k.startswith("wsrelay_disconnects_total"))

        async def publish_and_check(n):
            reply = await kept[0].request({"op": "publish", "channel": "live", "data": n})
            self.assertEqual("ack", reply["op"], reply)
            for client in kept:
                await client.wait_for(lambda c=client: any(
                    d == n for _, _, d in c.messages.get("live", [])), IO_TIMEOUT,
                    f"message {n}")

        await publish_and_check(1)
        await self.cut("cut")
        cut_at = time.monotonic()
        bound = (interval_ms + pong_ms) / 1000

        # The relay's next ping to each cut client goes unanswered: closed with 4002 (its close
        # frame is dropped too), seen in the gauge and the counter.
        series = await relay.wait_metric(
            lambda s: metric(s, "wsrelay_connections") == 3 and
            metric(s, "wsrelay_disconnects_total", code="4002") == closed_4002 + 3,
            timeout=bound * 4 + 10, what="3 connections left, 3 closed with 4002")
        closed_s = time.monotonic() - cut_at
        self.assertLessEqual(closed_s, bound + SLACK_S,
                             f"the cut clients were closed {closed_s:.2f}s after the cut")
        self.assertEqual(total_closed + 3, sum(v for k, v in series.items()
                                               if k.startswith("wsrelay_disconnects_total")))

        # Nothing else was touched: the other clients stayed through those pings, and deliver.
        for client in kept:
            self.assertIsNone(client.closed_at, f"{client.name} was closed")
            self.assertEqual("pong", (await client.request({"op": "ping"}))["op"])
        await publish_and_check(2)
        for client in cut_clients:
            self.assertEqual([1], [d for _, _, d in client.messages["live"]])
        print(f"\n    clients cut: closed with 4002 after {closed_s:.2f}s "
              f"(bound {bound:.2f}s + {SLACK_S}s)", flush=True)


if __name__ == "__main__":
    unittest.main()
