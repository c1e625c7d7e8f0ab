"""Subscribe, publish, unsubscribe and command errors through the real relay."""

import json
import unittest

from relay_harness import (RelayTestCase, closed_with, metric, ping_barrier, recv_json, request,
                           send_json, subscribe)


class PubSubTest(RelayTestCase):
    async def test_round_trip_between_two_clients(self):
        relay = await self.start_relay()
        async with relay.ws_connect() as a, relay.ws_connect() as b, relay.ws_connect() as idle:
            await subscribe(a, "room:1", id=1)
            await subscribe(b, "room:1", id=1)

            data = {"text": "h\u00e9llo \u2603", "n": [1, 2.5, None, True], "nested": {"k": "v"}}
            await send_json(a, {"op": "publish", "channel": "room:1", "data": data, "id": 7})

            # The publisher is subscribed, so it gets both its ack and its own message.
            got = [await recv_json(a), await recv_json(a)]
            self.assertIn({"op": "ack", "id": 7}, got)
            self.assertIn({"op": "message", "channel": "room:1", "data": data}, got)
            self.assertEqual({"op": "message", "channel": "room:1", "data": data},
                             await recv_json(b))

            # Exactly once: nothing else was queued for anyone before a later pong.
            self.assertEqual([], await ping_barrier(a))
            self.assertEqual([], await ping_barrier(b))
            self.assertEqual([], await ping_barrier(idle))

            # Both deliveries were timed from the publish to the socket write, and the publish
            # from the queue to the in-process broker taking it.
            series = await relay.ametrics()
            self.assertEqual(2, metric(series, "wsrelay_delivery_latency_seconds_count"))
            self.assertEqual(1, metric(series, "wsrelay_broker_publish_duration_seconds_count"))
            self.assertEqual(1, metric(series, "wsrelay_broker_up"))
            self.assertEqual(0, metric(series, "wsrelay_broker_probe_age_seconds"))

    async def test_every_json_data_type_is_relayed_unchanged(self):
        relay = await self.start_relay()
        values = ["text", "", 0, -17, 3.25, 1e300, True, False, None, [], {}, [1, [2, [3]]],
                  {"a": {"b": {"c": ["\u00fc", "\U0001f600", "\"quoted\"", "back\\slash"]}}}]
        async with relay.ws_connect() as sub, relay.ws_connect() as pub:
            await subscribe(sub, "types", id=1)
            for i, value in enumerate(values):
                await send_json(pub, {"op": "publish", "channel": "types", "data": value})
            for value in values:
                self.assertEqual({"op": "message", "channel": "types", "data": value},
                                 await recv_json(sub))
            self.assertEqual([], await ping_barrier(sub))
            # No id, no ack: the publisher got nothing back.
            self.assertEqual([], await ping_barrier(pub))

    async def test_publish_without_subscribers_is_acked(self):
        relay = await self.start_relay()
        async with relay.ws_connect() as pub:
            reply = await request(pub, {"op": "publish", "channel": "nobody", "data": 1, "id": 3})
            self.assertEqual({"op": "ack", "id": 3}, reply)

    async def test_unsubscribe_stops_delivery(self):
        # One worker: once the witness has its copy, the fan-out to every local subscriber is done.
        relay = await self.start_relay({"workers": 1})
        async with relay.ws_connect() as a, relay.ws_connect() as witness:
            await subscribe(a, "feed", id=1)
            await subscribe(witness, "feed", id=1)
            await send_json(a, {"op": "publish", "channel": "feed", "data": "before"})
            self.assertEqual({"op": "message", "channel": "feed", "data": "before"},
                             await recv_json(a))
            self.assertEqual({"op": "message", "channel": "feed", "data": "before"},
                             await recv_json(witness))

            reply = await request(a, {"op": "unsubscribe", "channel": "feed", "id": 2})
            self.assertEqual({"op": "ack", "id": 2}, reply)
            reply = await request(a, {"op": "publish", "channel": "feed", "data": "after",
                                      "id": 3})
            self.assertEqual({"op": "ack", "id": 3}, reply)
            self.assertEqual({"op": "message", "channel": "feed", "data": "after"},
                             await recv_json(witness))
            self.assertEqual([], await ping_barrier(a))

            # Subscribing again works and delivers again.
            await subscribe(a, "feed", id=4)
            await send_json(witness, {"op": "publish", "channel": "feed", "data": "again"})
            self.assertEqual({"op": "message", "channel": "feed", "data": "again"},
                             await recv_json(a))

    async def test_command_errors_keep_the_connection_open(self):
        relay = await self.start_relay({"limits.max_bad_commands": 1000})
        async with relay.ws_connect() as ws:
            async def expect_error(raw, code, id=None):
                await ws.send(raw if isinstance(raw, str) else json.dumps(raw))
                reply = await recv_json(ws)
                self.assertEqual("error", reply.get("op"), f"{raw!r} -> {reply}")
                self.assertEqual(code, reply.get("code"), f"{raw!r} -> {reply}")
                self.assertEqual(id, reply.get("id"), f"{raw!r} -> {reply}")
                self.assertIsInstance(reply.get("reason"), str)
                self.assertTrue(reply["reason"], f"{raw!r} -> {reply}")

            await expect_error("this is not json", 400)
            await expect_error("{\"op\":\"ping\"", 400)
            await expect_error("[1, 2]", 400)
            await expect_error({"channel": "c", "id": 2}, 400, id=2)
            await expect_error({"op": "subscribe", "id": 3}, 400, id=3)
            await expect_error({"op": "subscribe", "channel": 5, "id": 4}, 400, id=4)
            await expect_error({"op": "publish", "channel": "c", "id": 5}, 400, id=5)
            await expect_error({"op": "teleport", "id": 6}, 404, id=6)
            await expect_error({"op": "subscribe", "channel": "has space", "id": 7}, 422, id=7)
            await expect_error({"op": "subscribe", "channel": "", "id": 8}, 422, id=8)
            await expect_error({"op": "subscribe", "channel": "x" * 256, "id": 9}, 422, id=9)
            await expect_error({"op": "publish", "channel": "bad\u00e9", "data": 1, "id": 10}, 422,
                               id=10)

            await expect_error({"op": "ping", "id": -1}, 400)
            await expect_error({"op": "ping", "id": "1"}, 400)
            await expect_error({"op": "ping", "id": 1.5}, 400)
            await expect_error('{"op":"ping","op":"ping","id":16}', 400, id=16)
            deep = '{"op":"publish","channel":"c","id":17,"data":' + "[" * 65 + "1" + "]" * 65 + "}"
            await expect_error(deep, 400, id=17)  # 64 levels at most
            await expect_error('{"op":"ping","id":18} trailing', 400)
            await expect_error({"op": "Ping", "id": 19}, 404, id=19)

            await subscribe(ws, "x" * 255, id=11)  # max_channel_bytes is inclusive
            await subscribe(ws, "ok", id=12)
            await expect_error({"op": "subscribe", "channel": "ok", "id": 13}, 409, id=13)
            await expect_error({"op": "unsubscribe", "channel": "never", "id": 14}, 409, id=14)

            self.assertEqual({"op": "pong", "id": 15},
                             await request(ws, {"op": "ping", "id": 15}))
            # Still subscribed after all that.
            await send_json(ws, {"op": "publish", "channel": "ok", "data": "still here"})
            self.assertEqual({"op": "message", "channel": "ok", "data": "still here"},
                             await recv_json(ws))

        series = await relay.ametrics()
        self.assertGreaterEqual(metric(series, "wsrelay_error_frames_total", code="400"), 13)
        self.assertGreaterEqual(metric(series, "wsrelay_error_frames_total", code="404"), 2)
        self.assertGreaterEqual(metric(series, "wsrelay_error_frames_total", code="409"), 2)
        self.assertGreaterEqual(metric(series, "wsrelay_error_frames_total", code="422"), 4)

    async def test_data_text_is_forwarded_byte_for_byte(self):
        relay = await self.start_relay()
        data = '{"b" : 1,  "a":[1.50, 2e3, "\\u00e9\\n"], "z":{}}'
        async with relay.ws_connect() as ws:
            await subscribe(ws, "exact", id=1)
            await ws.send('{ "data" :  ' + data + ' , "channel":"exact", "op":"publish",'
                          ' "unknown": {"ignored": [true]} }')
            text = await ws.recv()
            self.assertIn('"data":' + data, text)
            self.assertEqual({"op": "message", "channel": "exact", "data": json.loads(data)},
                             json.loads(text))

    async def test_unknown_fields_are_ignored(self):
        relay = await self.start_relay()
        async with relay.ws_connect() as ws:
            reply = await request(ws, {"op": "ping", "id": 1, "extra": {"x": [1, None]}})
            self.assertEqual({"op": "pong", "id": 1}, reply)

    async def test_ping_without_id(self):
        relay = await self.start_relay()
        async with relay.ws_connect() as ws:
            await send_json(ws, {"op": "ping"})
            reply = await recv_json(ws)
            self.assertEqual("pong", reply.get("op"))
            self.assertIsNone(reply.get("id"))

    async def test_too_many_bad_commands_closes_with_4500(self):
        limit = 3
        relay = await self.start_relay({"limits.max_bad_commands": limit})
        async with relay.ws_connect() as ws:
            # `limit` bad commands are tolerated, each answered with an error frame.
            for i in range(limit):
                await ws.send("nope" if i % 2 else json.dumps({"op": "bogus", "id": i}))
                reply = await recv_json(ws)
                self.assertEqual("error", reply["op"])
            self.assertEqual({"op": "pong", "id": 100},
                             await request(ws, {"op": "ping", "id": 100}))
            # One more: its error frame still arrives, then the close.
            await ws.send(json.dumps({"op": "bogus", "id": 101}))
            code, frames = await closed_with(ws)
            self.assertEqual(4500, code)
            self.assertEqual(1, len(frames), frames)
            last = json.loads(frames[0])
            self.assertEqual(("error", 404, 101), (last["op"], last["code"], last["id"]))
        await relay.wait_metric(
            lambda s: metric(s, "wsrelay_disconnects_total", code="4500") >= 1,
            what="disconnects{code=4500} >= 1")

    async def test_subscription_limit(self):
        relay = await self.start_relay({"limits.max_subscriptions": 3})
        async with relay.ws_connect() as ws:
            for i in range(3):
                await subscribe(ws, f"ch{i}", id=i)
            reply = await request(ws, {"op": "subscribe", "channel": "ch3", "id": 10})
            self.assertEqual(("error", 413, 10), (reply["op"], reply["code"], reply["id"]))
            # Freeing a slot makes room again, and the connection is unharmed.
            self.assertEqual({"op": "ack", "id": 11},
                             await request(ws, {"op": "unsubscribe", "channel": "ch0", "id": 11}))
            await subscribe(ws, "ch3", id=12)
            await send_json(ws, {"op": "publish", "channel": "ch3", "data": 3})
            self.assertEqual({"op": "message", "channel": "ch3", "data": 3}, await recv_json(ws))
            series = await relay.ametrics()
            self.assertEqual(3, metric(series, "wsrelay_subscriptions"))
        await relay.wait_metric(lambda s: metric(s, "wsrelay_subscriptions") == 0,
                                what="subscriptions back to 0 after the client left")


if __name__ == "__main__":
    unittest.main()
