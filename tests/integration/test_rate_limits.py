"""limits.rate against the real binary, with tiny limits: a command over its kind's rate gets
error 429 with retry_after_ms and its id and is not run; once the advised time has passed it is
admitted; unsubscribe and ping are never refused; dry_run counts without refusing; refusals in a
row close with 4429, and every outcome is counted."""

import asyncio
import json
import unittest

from relay_harness import (RelayTestCase, closed_with, metric, ping_barrier, recv_json, request,
                           send_json, subscribe)

# One publish a second, one at once; closes after 5 refusals in a row.
TINY = {
    "limits.rate.publish_per_second": 1,
    "limits.rate.burst_seconds": 1,
    "limits.rate.max_refusals": 5,
}


def publish(id, data=1):
    return {"op": "publish", "channel": "chat", "data": data, "id": id}


class RateLimitTest(RelayTestCase):
    async def refused(self, kind):
        series = await self.relay.ametrics()
        return metric(series, "wsrelay_rate_limited_total", kind=kind, result="refused")

    async def test_a_publish_over_the_rate_gets_429_and_is_admitted_after_retry_after_ms(self):
        self.relay = await self.start_relay(TINY)
        async with self.relay.ws_connect() as ws:
            await subscribe(ws, "chat", id=1)
            await send_json(ws, publish(2, "first"))
            await send_json(ws, publish(3, "second"))
            # The ack and the message come when the broker took the publish (end of the loop
            # turn); the refusal at once. Their order is not the point.
            frames = [await recv_json(ws) for _ in range(3)]
            self.assertIn({"op": "ack", "id": 2}, frames)
            self.assertIn({"op": "message", "channel": "chat", "data": "first"}, frames)
            error = next(f for f in frames if f.get("op") == "error")
            self.assertEqual(
                {"op": "error", "id": 3, "code": 429, "reason": "rate limit exceeded"},
                {k: v for k, v in error.items() if k != "retry_after_ms"})
            self.assertGreater(error["retry_after_ms"], 0)
            self.assertLessEqual(error["retry_after_ms"], 1000)

            # The bucket's time, not an event: what the client was told to wait.
            await asyncio.sleep(error["retry_after_ms"] / 1000 + 0.05)
            await send_json(ws, publish(4, "third"))
            frames = [await recv_json(ws) for _ in range(2)]
            self.assertIn({"op": "ack", "id": 4}, frames)
            # The refused publish was not run: one publisher's messages keep their order, so
            # "second" would have come before "third".
            self.assertIn({"op": "message", "channel": "chat", "data": "third"}, frames)
            self.assertEqual([], await ping_barrier(ws))
        series = await self.relay.ametrics()
        self.assertEqual(1, metric(series, "wsrelay_rate_limited_total", kind="publish",
                                   result="refused"))
        self.assertEqual(1, metric(series, "wsrelay_error_frames_total", code="429"))
        self.assertEqual(2, metric(series, "wsrelay_broker_publishes_total"))
        self.assertEqual(0, metric(series, "wsrelay_rate_limited_total", kind="publish",
                                   result="dry_run"))

    async def test_a_command_without_an_id_is_refused_without_one(self):
        self.relay = await self.start_relay(TINY)
        async with self.relay.ws_connect() as ws:
            await send_json(ws, {"op": "publish", "channel": "chat", "data": 1})
            await send_json(ws, {"op": "publish", "channel": "chat", "data": 2})
            error = await recv_json(ws)
            self.assertEqual(429, error["code"])
            self.assertNotIn("id", error)
            self.assertIn("retry_after_ms", error)

    async def test_unsubscribe_and_ping_are_never_refused(self):
        self.relay = await self.start_relay({
            "limits.rate.subscribe_per_second": 1,
            "limits.rate.other_per_second": 1,
            "limits.rate.burst_seconds": 1,
            "limits.rate.max_refusals": 3,
        })
        async with self.relay.ws_connect() as ws:
            await subscribe(ws, "chat", id=1)
            for i in range(100):
                await send_json(ws, {"op": "ping", "id": 1000 + i})
                await send_json(ws, {"op": "unsubscribe", "channel": "chat", "id": 2000 + i})
            frames = [await recv_json(ws) for _ in range(200)]
            self.assertEqual([], [f for f in frames if f.get("code") == 429])
            self.assertEqual(100, sum(1 for f in frames if f.get("op") == "pong"))
            self.assertIn({"op": "ack", "id": 2000}, frames)
            # Still open; two subscribes back to back: the second is refused.
            await send_json(ws, {"op": "subscribe", "channel": "a", "id": 3})
            await send_json(ws, {"op": "subscribe", "channel": "b", "id": 4})
            replies = {f["id"]: f for f in [await recv_json(ws), await recv_json(ws)]}
            self.assertEqual(429, replies[4]["code"])
            refused = sum(1 for f in replies.values() if f.get("code") == 429)
        self.assertEqual(refused, await self.refused("subscribe"))

    async def test_dry_run_counts_and_refuses_nothing(self):
        self.relay = await self.start_relay({**TINY, "limits.rate.dry_run": True})
        async with self.relay.ws_connect() as ws:
            for i in range(10):
                await send_json(ws, publish(i))
            replies = [await recv_json(ws) for _ in range(10)]
            self.assertEqual([{"op": "ack", "id": i} for i in range(10)], replies)
            await ping_barrier(ws)
        series = await self.relay.wait_metric(
            lambda s: metric(s, "wsrelay_rate_limited_total", kind="publish",
                             result="dry_run") == 9,
            what="9 publishes counted in dry run")
        self.assertEqual(0, metric(series, "wsrelay_rate_limited_total", kind="publish",
                                   result="refused"))
        self.assertEqual(0, metric(series, "wsrelay_rate_limit_closes_total"))

    async def test_refusals_in_a_row_close_with_4429(self):
        self.relay = await self.start_relay(TINY)
        async with self.relay.ws_connect() as ws:
            self.assertEqual({"op": "ack", "id": 1}, await request(ws, publish(1)))
            # Exactly as many as it takes: a client still sending when the relay closes may see
            # the connection reset (1006) rather than the close frame.
            for i in range(2, 7):
                await send_json(ws, publish(i))
            code, frames = await closed_with(ws)
            self.assertEqual(4429, code)
            self.assertEqual("rate limited", ws.close_reason)
            frames = [json.loads(f) for f in frames]
            # Five refusals, each with its id, written before the close.
            self.assertEqual([2, 3, 4, 5, 6], [f["id"] for f in frames])
            self.assertTrue(all(f["code"] == 429 for f in frames))
        await self.relay.wait_metric(
            lambda s: metric(s, "wsrelay_disconnects_total", code="4429") == 1,
            what="one 4429 disconnect")
        series = await self.relay.ametrics()
        self.assertEqual(1, metric(series, "wsrelay_rate_limit_closes_total"))
        self.assertEqual(5, metric(series, "wsrelay_rate_limited_total", kind="publish",
                                   result="refused"))

    async def test_the_limits_are_per_connection(self):
        self.relay = await self.start_relay(TINY)
        async with self.relay.ws_connect() as a, self.relay.ws_connect() as b:
            self.assertEqual({"op": "ack", "id": 1}, await request(a, publish(1)))
            self.assertEqual({"op": "ack", "id": 1}, await request(b, publish(1)))
            self.assertEqual(429, (await request(a, publish(2)))["code"])


if __name__ == "__main__":
    unittest.main()
