"""The process's memory budget (limits.memory_budget_bytes): subscribers that stop reading are shed
(4001 "memory budget") largest first while a fast reader keeps receiving, the relay's memory stays
under the budget plus a stated overhead, and a publish into a full budget is refused with 503."""

import asyncio
import json
import unittest

from hook_gate_backend import GateBackend
from relay_harness import (IO_TIMEOUT, UNMETERED, Closed, RelayTestCase, metric, ping_barrier,
                           recv_json, request, send_json, subscribe)

MIB = 1024 * 1024
SLOW = 200
BURST = 512                    # 64 KiB messages: 32 MiB published in all
PAD = "x" * (64 * 1024 - 40)   # the message's data, about 64 KiB with its seq
BUDGET = 16 * MIB
# What the relay may grow by beyond the budget: one loop turn's writes, which can hand libwebsockets
# a copy of the unsent part of a frame for each of the 200 stuck sockets (counted, but before the
# shedder runs at the end of that turn: up to 12.5 MiB), the messages between the broker and the
# queues, read buffers, and malloc's arenas for two workers. Measured here: about 20 MiB of growth
# at the peak. Without the budget the slow subscribers would pin every message of the burst
# (32 MiB) plus those copies: over budget + overhead.
OVERHEAD = 12 * MIB
WINDOW = 4  # publishes ahead of the fast reader


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} missing from /proc/{pid}/status")


class MemoryBudgetTest(RelayTestCase):
    relay_defaults = UNMETERED  # one connection publishes the burst

    async def test_slow_subscribers_are_shed_and_memory_stays_under_the_budget(self):
        relay = await self.start_relay({
            "limits.memory_budget_bytes": BUDGET,
            # Each connection may queue far more than the budget: only the budget bounds the sum.
            "limits.send_queue_bytes": 64 * MIB,
            "websocket.max_message_bytes": 128 * 1024,
            # Small kernel send buffers: what a client does not read stays in the relay's queues.
            "limits.socket_send_buffer_bytes": 4096,
            "limits.max_connections": 1000,
        })
        self.assertIn("memory budget: 16777216 bytes (limits.memory_budget_bytes)", relay.log())
        series = await relay.ametrics()
        self.assertEqual(BUDGET, metric(series, "wsrelay_memory_budget_bytes"))

        slow = []
        for _ in range(SLOW):
            ws = await relay.raw_connect(rcvbuf=4096)
            slow.append(ws)
            await ws.send_json({"op": "subscribe", "channel": "burst", "id": 1})
            self.assertEqual({"op": "ack", "id": 1}, await ws.recv_json())
            ws.pause_reading()  # never reads again until the end

        async with relay.ws_connect() as fast, relay.ws_connect() as pub:
            await subscribe(fast, "burst")
            baseline_kib = status_kib(relay.proc.pid, "VmRSS")

            received = []
            progress = asyncio.Condition()

            async def read_fast():
                while len(received) < BURST:
                    frame = json.loads(await fast.recv())
                    self.assertEqual("message", frame["op"], frame["op"])
                    async with progress:
                        received.append(frame["data"]["seq"])
                        progress.notify_all()

            reader = asyncio.create_task(read_fast())
            refused = 0
            try:
                for seq in range(BURST):
                    async with progress:
                        await asyncio.wait_for(progress.wait_for(
                            lambda: len(received) >= seq - WINDOW or reader.done()), 10)
                    if reader.done():
                        break
                    while True:
                        reply = await request(pub, {"op": "publish", "channel": "burst", "id": seq,
                                                    "data": {"seq": seq, "pad": PAD}})
                        if reply.get("op") == "ack":
                            break
                        # Refused while the budget is full: the client's retry policy.
                        self.assertEqual(503, reply.get("code"), reply)
                        self.assertEqual("memory budget full", reply.get("reason"), reply)
                        refused += 1
                        await asyncio.sleep(0.01)
                await asyncio.wait_for(reader, 30)
            finally:
                reader.cancel()

            # The fast reader got every message accepted, in order, once; it was never shed.
            self.assertEqual(list(range(BURST)), received)
            self.assertEqual([], await ping_barrier(fast))
            peak_kib = status_kib(relay.proc.pid, "VmHWM")
            sanitized = relay.sanitized()

        grown = (peak_kib - baseline_kib) * 1024
        if not sanitized:
            # AddressSanitizer keeps freed memory in quarantine (256 MiB by default): RSS says
            # nothing there. The sheds, the counters and the fast reader below hold in every build.
            self.assertLessEqual(
                grown, BUDGET + OVERHEAD,
                f"peak RSS {peak_kib} KiB is {grown} bytes over the {baseline_kib} KiB baseline")

        # Every slow subscriber was shed: its socket ends with 4001 "memory budget" when a close
        # frame got through, or EOF/reset once the relay gave up on the close handshake.
        for ws in slow:
            ws.resume_reading()
        for ws in slow:
            closed = await ws.wait_closed(timeout=30)
            self.assertIsInstance(closed, Closed)
            if closed.code is not None:
                self.assertEqual((4001, b"memory budget"), (closed.code, closed.reason), closed)
            await ws.close()

        series = await relay.wait_metric(
            lambda s: metric(s, "wsrelay_disconnects_total", code="4001") >= SLOW,
            timeout=30, what=f"disconnects{{code=4001}} >= {SLOW}")
        self.assertEqual(SLOW, metric(series, "wsrelay_memory_shed_total"))
        self.assertEqual(SLOW, metric(series, "wsrelay_disconnects_total", code="4001"))
        self.assertGreater(
            metric(series, "wsrelay_dropped_messages_total", reason="memory_budget"), 0)
        self.assertEqual(0, metric(series, "wsrelay_dropped_messages_total",
                                   reason="slow_consumer_close"))
        self.assertEqual(refused, metric(series, "wsrelay_memory_refused_total", entry="client"))
        self.assertEqual(refused, metric(series, "wsrelay_error_frames_total", code="503"))
        self.assertIn("memory budget full", relay.log())

    async def test_a_publish_into_a_full_budget_gets_503_until_it_has_room(self):
        # Routed publishes held by the app wait in the relay's hook queues: counted, and not shed
        # (the app is slow, not the clients), so the budget stays full until the app answers.
        backend = GateBackend()
        self.addCleanup(backend.stop)
        budget = 4 * MIB
        relay = await self.start_relay({
            "limits.memory_budget_bytes": budget,
            "hook.url": backend.url(),
            "hook.timeout_ms": 10000,
            "hook.routes": ["app:*=hook"],
            "hook.max_queued_bytes_per_connection": 8 * MIB,
            "websocket.max_message_bytes": 128 * 1024,
            "api.key": "k",
        })
        await backend.hold()
        senders = [await relay.ws_connect().__aenter__() for _ in range(2)]
        for ws in senders:
            self.addAsyncCleanup(ws.close)
        data = {"pad": "y" * (60 * 1024)}
        for ws in senders:
            for n in range(40):  # 2 x 40 x 60 KiB: 4.7 MiB
                await send_json(ws, {"op": "publish", "channel": "app:in", "data": data,
                                     "id": n})
        early = []  # refusals of the last routed publishes, once the budget was full
        for ws in senders:
            early += await ping_barrier(ws)
        for frame in early:
            self.assertEqual((503, "memory budget full"), (frame["code"], frame["reason"]), frame)
        series = await relay.ametrics()
        self.assertGreaterEqual(metric(series, "wsrelay_queued_bytes"), 0.9 * budget)

        async with relay.ws_connect() as pub:
            reply = await request(pub, {"op": "publish", "channel": "news", "data": 1, "id": 7})
            self.assertEqual({"op": "error", "id": 7, "code": 503,
                              "reason": "memory budget full"}, reply)
            status, _, body = await relay.ahttp_post(
                "/api/publish", {"channel": "news", "data": 1}, {"X-API-Key": "k"})
            self.assertEqual((503, {"error": "memory budget full"}), (status, json.loads(body)))
            series = await relay.ametrics()
            self.assertEqual(len(early) + 1,
                             metric(series, "wsrelay_memory_refused_total", entry="client"))
            self.assertEqual(1, metric(series, "wsrelay_memory_refused_total", entry="api"))
            self.assertEqual(0, metric(series, "wsrelay_memory_shed_total"))

            # The app answers: its queues drain, and publishes are taken again.
            await backend.release()
            await relay.wait_metric(lambda s: metric(s, "wsrelay_hook_queued_bytes") == 0,
                                    timeout=15, what="hook queues drained")
            reply = await request(pub, {"op": "publish", "channel": "news", "data": 2, "id": 8})
            self.assertEqual({"op": "ack", "id": 8}, reply)


if __name__ == "__main__":
    unittest.main()
