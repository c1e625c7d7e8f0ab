"""What the relay does with the app's answers (docs/hook.md#the-answer), against the scriptable
backend process hook_gate_backend.py: command members set to null or false, and publishes in an
answer that the broker (a real Redis) cannot take."""

import asyncio
import unittest

from relay_harness import (IO_TIMEOUT, RelayTestCase, closed_with, metric, redis_overrides,
                           request, subscribe)
from hook_gate_backend import GateBackend


class HookAnswerTest(RelayTestCase):
    async def start_pair(self, extra=None):
        backend = GateBackend()
        self.addCleanup(backend.stop)
        config = {"hook.url": backend.url(), "hook.routes": ["chat:*=hook"]}
        config.update(extra or {})
        relay = await self.start_relay(config)
        return backend, relay

    async def send(self, ws, answer, id):
        """A `send` (RPC) the app answers with `answer`; returns what the client got."""
        return await request(ws, {"op": "send", "data": {"answer": answer}, "id": id})

    async def test_null_or_false_commands_are_absent(self):
        backend, relay = await self.start_pair()
        for answer in ({"deny": None}, {"deny": False}):
            await backend.script("connect", answer)
            await backend.script("subscribe", answer)
            async with relay.ws_connect() as ws:  # the upgrade is not refused
                await subscribe(ws, "room")
        async with relay.ws_connect() as ws:
            for i, answer in enumerate([{"deny": None}, {"deny": False}, {"disconnect": None},
                                        {"disconnect": False}, {"error": None},
                                        {"error": False}]):
                got = await self.send(ws, dict(answer, reply=i), id=i + 1)
                self.assertEqual({"op": "reply", "id": i + 1, "data": i}, got, answer)
                routed = await request(ws, {"op": "publish", "channel": "chat:x",
                                            "data": {"answer": answer}, "id": 100 + i})
                self.assertEqual({"op": "ack", "id": 100 + i}, routed, answer)
            # The connection is still open, and a real command still acts.
            denied = await self.send(ws, {"deny": {"message": "no"}}, id=50)
            self.assertEqual(("error", 403, "no"), (denied["op"], denied["code"],
                                                    denied["reason"]))
            failed = await self.send(ws, {"error": "not an object"}, id=51)
            self.assertEqual(("error", 502), (failed["op"], failed["code"]))
            await self.send(ws, {"disconnect": {"code": 4321, "reason": "bye"}, "reply": 0}, id=52)
            code, _ = await closed_with(ws)
            self.assertEqual(4321, code)
        m = await relay.ametrics()
        self.assertEqual(0, metric(m, "wsrelay_hook_requests_total", event="connect",
                                   result="denied"))
        self.assertEqual(0, metric(m, "wsrelay_hook_requests_total", event="subscribe",
                                   result="denied"))
        self.assertEqual(1, metric(m, "wsrelay_hook_requests_total", event="message",
                                   result="denied"))

    async def test_answer_publishes_the_broker_cannot_take_fail_the_command(self):
        redis = self.start_redis()
        backend, relay = await self.start_pair(redis_overrides(redis))
        await relay.wait_metric(lambda s: metric(s, "wsrelay_broker_up") == 1, timeout=15,
                                what="the broker up")
        await backend.script("subscribe", {"publish": [{"channel": "news", "data": "joined"}]})
        publish = {"publish": [{"channel": "news", "data": 1}]}
        async with relay.ws_connect() as ws:
            ok = await request(ws, {"op": "publish", "channel": "chat:x",
                                    "data": {"answer": publish}, "id": 1})
            self.assertEqual({"op": "ack", "id": 1}, ok)

            redis.kill()
            before = await relay.wait_metric(lambda s: metric(s, "wsrelay_broker_up") == 0,
                                             timeout=15, what="the broker down")
            # The answer's publish could not be handed to the broker: the command gets the
            # broker's error, not an ack (nor the app's reply) saying it went out.
            routed = await request(ws, {"op": "publish", "channel": "chat:x",
                                        "data": {"answer": publish}, "id": 2})
            self.assertEqual(("error", 503, "broker unavailable"),
                             (routed["op"], routed["code"], routed["reason"]), routed)
            rpc = await request(ws, {"op": "send", "data": {"answer": dict(publish, reply="sent")},
                                     "id": 3})
            self.assertEqual(("error", 503, "broker unavailable"),
                             (rpc["op"], rpc["code"], rpc["reason"]), rpc)
            # Answers without publishes still work while the broker is down.
            plain = await self.send(ws, {"reply": "x"}, id=4)
            self.assertEqual({"op": "reply", "id": 4, "data": "x"}, plain)
            # A subscribe stands; its answer's failed publish is counted and logged.
            await subscribe(ws, "room", id=5)
            after = await relay.ametrics()
            self.assertEqual(metric(before, "wsrelay_broker_publish_failures_total") + 3,
                             metric(after, "wsrelay_broker_publish_failures_total"))
            await asyncio.to_thread(
                relay.wait_for_log,
                "the answer to a subscribe hook event had 1 publishes the broker could not take",
                IO_TIMEOUT)

    async def test_an_answer_publish_failing_later_is_counted_and_logged(self):
        redis = self.start_redis()
        backend, relay = await self.start_pair(redis_overrides(redis, {
            "workers": 1, "broker.redis.probe_interval_ms": 100,
            "broker.redis.probe_timeout_ms": 2000}))
        await relay.wait_metric(lambda s: metric(s, "wsrelay_broker_up") == 1, timeout=15,
                                what="the broker up")
        before = await relay.ametrics()
        # Redis stops answering PUBLISH: the answer's publish is taken (the broker is up) and
        # then lost when the delivery probe times out and the relay drops the connection.
        await redis.acommand("CLIENT", "PAUSE", "30000", "WRITE")
        self.addCleanup(redis.command, "CLIENT", "UNPAUSE")
        async with relay.ws_connect() as ws:
            ok = await request(ws, {"op": "publish", "channel": "chat:x", "data": {
                "answer": {"publish": [{"channel": "news", "data": 1}]}}, "id": 1})
            self.assertEqual({"op": "ack", "id": 1}, ok)
            await relay.wait_metric(
                lambda s: metric(s, "wsrelay_broker_publish_failures_total")
                > metric(before, "wsrelay_broker_publish_failures_total"),
                timeout=15, what="the failure counted")
            await asyncio.to_thread(
                relay.wait_for_log,
                "a publish from a hook answer failed after it was handed to the broker "
                "(broker unavailable)", IO_TIMEOUT)
        await redis.acommand("CLIENT", "UNPAUSE")


if __name__ == "__main__":
    unittest.main()
