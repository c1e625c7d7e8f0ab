"""Each connection's queue of hook events (docs/hook.md#order) against a backend process that
holds its answers until told (hook_gate_backend.py): events a client sent before it closed still
reach the app, in order, followed by its disconnect, also when the relay stops."""

import asyncio
import os
import signal
import unittest

from hook_gate_backend import GateBackend
from relay_harness import (HOST, IO_TIMEOUT, RelayTestCase, metric, ping_barrier, recv_json,
                           request, send_json, wait_until)

def sequence(events, connection):
    """(event, n) of one connection's requests, in arrival order; n for messages, code for
    disconnects."""
    return [(e["event"], e["n"] if e["event"] == "message" else e["code"])
            for e in events if e["connection"] == connection]


class HookQueueTest(RelayTestCase):
    async def start_pair(self, extra=None):
        backend = GateBackend()
        self.addCleanup(backend.stop)
        config = {"hook.url": backend.url(), "hook.timeout_ms": 5000,
                  "hook.routes": ["chat:*=hook"]}
        config.update(extra or {})
        relay = await self.start_relay(config)
        return backend, relay

    async def connection_id(self, backend, before):
        """The id the app knows the newest connection by (its connect event)."""
        got = await backend.wait_events(
            lambda evs: any(e["event"] == "connect" and e["connection"] not in before for e in evs),
            "a connect event")
        return [e["connection"] for e in got
                if e["event"] == "connect" and e["connection"] not in before][0]

    async def open(self, relay, backend):
        before = {e["connection"] for e in await backend.events()}
        ws = await relay.ws_connect().__aenter__()
        self.addAsyncCleanup(ws.close)
        return ws, await self.connection_id(backend, before)

    async def publish_held(self, backend, ws, connection, count):
        """Sends `count` routed publishes; the first reaches the app and is held there, the rest
        wait in the relay behind it."""
        for n in range(1, count + 1):
            await send_json(ws, {"op": "publish", "channel": "chat:room", "data": {"n": n},
                                 "id": n})
        await backend.wait_events(
            lambda evs: ("message", 1) in sequence(evs, connection), "message 1 at the app")
        self.assertEqual(1, await backend.held())
        # The relay has read them all: a ping behind them is answered, and nothing came before.
        self.assertEqual([], await ping_barrier(ws))

    async def test_events_queued_at_close_reach_the_app_in_order_then_the_disconnect(self):
        backend, relay = await self.start_pair()
        await backend.hold()
        ws, conn = await self.open(relay, backend)
        await self.publish_held(backend, ws, conn, 5)
        await ws.close()
        await relay.wait_metric(lambda s: metric(s, "wsrelay_connections") == 0,
                                what="the connection closed at the relay")
        # Gone from the relay, and the app has still heard only of the first.
        self.assertEqual([("message", 1)],
                         [x for x in sequence(await backend.events(), conn) if x[0] != "connect"])
        await backend.release()
        got = await backend.wait_events(
            lambda evs: ("disconnect", 1000) in sequence(evs, conn), "the disconnect")
        self.assertEqual([("connect", None)] + [("message", n) for n in range(1, 6)]
                         + [("disconnect", 1000)], sequence(got, conn))
        m = await relay.wait_metric(
            lambda s: metric(s, "wsrelay_hook_requests_total", event="disconnect", result="ok") == 1,
            what="the disconnect answered")
        self.assertEqual(5, metric(m, "wsrelay_hook_requests_total", event="message", result="ok"))
        self.assertEqual(0, metric(m, "wsrelay_hook_in_flight"))

    async def test_publishes_then_close_at_once_all_reach_the_app(self):
        backend, relay = await self.start_pair()
        ws, conn = await self.open(relay, backend)
        for n in range(1, 6):
            await send_json(ws, {"op": "publish", "channel": "chat:room", "data": {"n": n},
                                 "id": n})
        await ws.close()
        got = await backend.wait_events(
            lambda evs: any(e["event"] == "disconnect" for e in evs), "the disconnect")
        self.assertEqual([("connect", None)] + [("message", n) for n in range(1, 6)]
                         + [("disconnect", 1000)], sequence(got, conn))

    async def test_stop_waits_for_queued_events_and_the_disconnects(self):
        backend, relay = await self.start_pair({"drain.window_ms": 100})
        await backend.hold()
        ws, conn = await self.open(relay, backend)
        await self.publish_held(backend, ws, conn, 3)
        relay.signal(signal.SIGTERM)
        await asyncio.to_thread(relay.wait_for_log, "stopping: waiting up to", IO_TIMEOUT)
        self.assertEqual([("connect", None), ("message", 1)],
                         sequence(await backend.events(), conn))
        await backend.release()
        self.assertEqual(0, await asyncio.to_thread(relay.wait))
        self.assertEqual([("connect", None), ("message", 1), ("message", 2), ("message", 3),
                          ("disconnect", 1001)], sequence(await backend.events(), conn))
        self.assertNotIn("abandoned", relay.log())

    async def test_what_the_stop_cannot_send_is_counted_and_logged(self):
        # The second message is sent when the first times out, and is still unanswered when the
        # stop gives up (hook.timeout_ms + 1 s after it began) as long as the stop began less than
        # hook.timeout_ms - 1 s (3 s here) after the first was sent.
        backend, relay = await self.start_pair({"drain.window_ms": 100, "hook.timeout_ms": 4000})
        await backend.hold()
        ws, conn = await self.open(relay, backend)
        await self.publish_held(backend, ws, conn, 3)
        relay.signal(signal.SIGTERM)
        self.assertEqual(0, await asyncio.to_thread(relay.wait, 20))
        self.assertIn("stopping: 3 hook events abandoned: 1 sent and not answered, 2 never sent",
                      relay.log())
        self.assertEqual([("connect", None), ("message", 1), ("message", 2)],
                         sequence(await backend.events(), conn))

    async def test_queued_bytes_are_bounded_and_the_rest_refused_out_loud(self):
        """A slow app and 40 clients each publishing 65 messages of 60 KB: without a byte bound
        the relay held ~300 MiB; now what exceeds the per-connection and the instance's bound
        gets 503 hook busy at once, is counted, and memory stays bounded."""
        per_connection, instance, pad = 512 * 1024, 4 * 1024 * 1024, 60 * 1024
        backend, relay = await self.start_pair({
            "workers": 1, "hook.timeout_ms": 60000,
            "hook.max_queued_bytes_per_connection": per_connection,
            "hook.max_queued_bytes": instance})
        await backend.hold()
        clients = [await self.open(relay, backend) for _ in range(40)]
        filler = "x" * pad

        def publish(n):
            return ('{"op":"publish","channel":"chat:big","data":{"n":%d,"pad":"%s"},"id":%d}'
                    % (n, filler, n))

        def counted(n):  # what one queued event counts: its data and channel, plus 256
            data = '{"n":%d,"pad":"%s"}' % (n, filler)
            return len(data) + len("chat:big") + 256

        async def burst(ws):
            for n in range(1, 66):
                await ws.send(publish(n))
            errors = await ping_barrier(ws, timeout=60)
            for e in errors:
                self.assertEqual(("error", 503, "hook busy"), (e["op"], e["code"], e["reason"]))
            return sorted(e["id"] for e in errors)

        rss_before = rss_kib(relay)
        # The first client alone: its first message goes to the app (and is held there), as many
        # as fit in its own bound wait, the rest are refused.
        fit, used = 0, 0
        while used + counted(fit + 2) <= per_connection:
            used += counted(fit + 2)
            fit += 1
        first_ws, first_conn = clients[0]
        self.assertEqual(list(range(2 + fit, 66)), await burst(first_ws))
        m = await relay.ametrics()
        self.assertEqual(used, metric(m, "wsrelay_hook_queued_bytes"))
        # Then the other 39 at once, until the instance's bound.
        refused = await asyncio.gather(*(burst(ws) for ws, _ in clients[1:]))
        m = await relay.ametrics()
        busy = 65 - 1 - fit + sum(len(r) for r in refused)
        self.assertEqual(busy, metric(m, "wsrelay_hook_requests_total", event="message",
                                      result="overflow"))
        queued = metric(m, "wsrelay_hook_queued_bytes")
        self.assertLessEqual(queued, instance)
        self.assertGreater(queued, instance - counted(65))  # the instance's bound was reached
        grown_mib = (rss_kib(relay) - rss_before) / 1024
        # Held without bounds, the same load took the relay from 13 to 326 MiB.
        if not relay.sanitized():
            # AddressSanitizer keeps freed memory in quarantine (256 MiB by default): RSS says
            # nothing there. The counters and the gauge above hold in every build.
            self.assertLess(grown_mib, 96, f"RSS grew by {grown_mib:.0f} MiB")

        # Released: everything that was accepted reaches the app, in order, and is acked.
        await backend.release()
        for (ws, conn), refused_ids in zip(clients, [list(range(2 + fit, 66))] + refused):
            accepted = [n for n in range(1, 66) if n not in refused_ids]
            acks = [await recv_json(ws, timeout=30) for _ in accepted]
            self.assertEqual([{"op": "ack", "id": n} for n in accepted], acks)
            messages = [n for e, n in sequence(await backend.events(), conn) if e == "message"]
            self.assertEqual(accepted, messages)
        m = await relay.ametrics()
        self.assertEqual(0, metric(m, "wsrelay_hook_queued_bytes"))
        self.assertEqual(40 * 65 - busy, metric(m, "wsrelay_hook_requests_total", event="message",
                                                result="ok"))


def rss_kib(relay):
    with open(f"/proc/{relay.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


if __name__ == "__main__":
    unittest.main()
