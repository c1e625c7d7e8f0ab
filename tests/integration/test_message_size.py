"""Messages whose frame could never fit in a send queue (limits.send_queue_bytes) are refused where
they enter the relay, and never close the subscribers: a backend's own Redis PUBLISH, a publish in
a hook answer, a hook rewriting a client's data, the HTTP API. And the largest publish the
configuration allows is delivered."""

import asyncio
import http.server
import json
import threading
import unittest

from relay_harness import (HOST, IO_TIMEOUT, RelayTestCase, metric, ping_barrier, recv_json,
                           redis_overrides, request, subscribe, wait_until)

KEY = "size-test-key"
QUEUE = 4096
# Any client message up to this size fits in the queue once framed (a header is at most 10 bytes).
MAX_MESSAGE = QUEUE - 10


def frame_size(channel, data_json):
    """What the relay's message frame for `data_json` on `channel` takes: the JSON plus the
    RFC 6455 header of a server text frame."""
    payload = len(f'{{"op":"message","channel":"{channel}","data":{data_json}}}'.encode())
    return payload + (2 if payload <= 125 else 4 if payload <= 0xFFFF else 10)


def string_json(n):
    """A JSON string value of n characters."""
    return '"' + "x" * n + '"'


class HookApp:
    """A hook endpoint in a thread of the test: answers each message event with answers[channel]."""

    def __init__(self, answers):
        self.answers = answers
        app = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as libcurl expects

            def do_POST(self):
                event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                body = json.dumps(app.answers.get(event.get("channel"), {})).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((HOST, 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def url(self):
        return f"http://{HOST}:{self.server.server_address[1]}/hook"


class MessageSizeTest(RelayTestCase):
    async def test_backend_publish_larger_than_the_queue_closes_nobody(self):
        """The reported case: a 1.2 MB PUBLISH straight into Redis used to close every subscriber
        with 4001. It is dropped once per worker, counted per subscriber, logged once per window."""
        redis = self.start_redis()
        relay = await self.start_relay(redis_overrides(redis, {"workers": 2}))
        clients = [await relay.ws_connect().__aenter__() for _ in range(6)]
        try:
            for ws in clients:
                await subscribe(ws, "big")
            await wait_until(lambda: redis.numsub("big") >= 1, what="a Redis subscription")
            huge = string_json(1_200_000)
            self.assertGreater(frame_size("big", huge), 1 << 20)
            workers = await redis.apublish("big", huge)
            await redis.apublish("big", huge)
            await redis.apublish("big", '{"n":2}')
            # Each worker handles its messages in order: the small one arriving means the two large
            # ones were handled before it, without a frame for anyone.
            for ws in clients:
                self.assertEqual({"op": "message", "channel": "big", "data": {"n": 2}},
                                 await recv_json(ws))
                self.assertEqual([], await ping_barrier(ws))
        finally:
            for ws in clients:
                await ws.close()
        series = await relay.ametrics()
        self.assertEqual(0, metric(series, "wsrelay_disconnects_total", code="4001"))
        self.assertEqual(0, metric(series, "wsrelay_dropped_messages_total",
                                   reason="slow_consumer_close"))
        self.assertEqual(2 * len(clients),
                         metric(series, "wsrelay_dropped_messages_total", reason="too_large"))
        self.assertEqual(2 * workers,
                         metric(series, "wsrelay_too_large_messages_total", source="broker"))
        # One warning per worker: the second drop falls in the same 10 s window.
        needle = "dropped a message from the broker on channel big"
        await wait_until(lambda: relay.log().count(needle) >= workers, what="the warnings")
        self.assertEqual(workers, relay.log().count(needle), relay.log())
        self.assertIn("frame exceeds limits.send_queue_bytes (1048576)", relay.log())

    async def test_hook_answers_that_are_too_large(self):
        """A publish in a hook answer is dropped and logged; a hook rewriting a client's data
        into something too large gets the client a 413. Subscribers are untouched."""
        big = "y" * QUEUE
        app = HookApp({
            "rewrite": {"data": big},
            "ask": {"publish": [{"channel": "room", "data": big},
                                {"channel": "room", "data": {"n": 1}}]},
        }).start()
        self.addCleanup(app.close)
        relay = await self.start_relay({
            "hook.url": app.url(),
            "hook.events": ["message"],
            "hook.routes": ["rewrite=both", "ask=hook"],
            "limits.send_queue_bytes": QUEUE,
            "websocket.max_message_bytes": MAX_MESSAGE,
        })
        async with relay.ws_connect() as sub, relay.ws_connect() as pub:
            await subscribe(sub, "room", id=1)
            await subscribe(sub, "rewrite", id=2)
            reply = await request(pub, {"op": "publish", "channel": "rewrite", "data": "hi",
                                        "id": 5})
            self.assertEqual({"op": "error", "id": 5, "code": 413,
                              "reason": "message too large to deliver"}, reply)
            reply = await request(pub, {"op": "publish", "channel": "ask", "data": "hi", "id": 6})
            self.assertEqual({"op": "ack", "id": 6}, reply)
            self.assertEqual({"op": "message", "channel": "room", "data": {"n": 1}},
                             await recv_json(sub))
            self.assertEqual([], await ping_barrier(sub))
        await asyncio.to_thread(relay.wait_for_log,
                                "dropped a publish in a hook answer on channel room", IO_TIMEOUT)
        series = await relay.ametrics()
        self.assertEqual(1, metric(series, "wsrelay_too_large_messages_total", source="client"))
        self.assertEqual(1, metric(series, "wsrelay_too_large_messages_total", source="hook"))
        self.assertEqual(1, metric(series, "wsrelay_error_frames_total", code="413"))
        self.assertEqual(0, metric(series, "wsrelay_disconnects_total", code="4001"))

    async def test_api_refuses_a_body_whose_frame_would_not_fit(self):
        """An API body within websocket.max_message_bytes can still frame larger than the queue
        (its envelope is shorter than the message frame's): 413, nothing published."""
        relay = await self.start_relay({"api.key": KEY, "limits.send_queue_bytes": QUEUE,
                                        "websocket.max_message_bytes": MAX_MESSAGE})
        # The longest string that still fits: the queue less a 4-byte header and the envelope.
        fits = QUEUE - 4 - len('{"op":"message","channel":"c","data":""}')
        self.assertEqual(QUEUE, frame_size("c", string_json(fits)))
        # A name 21 bytes longer: what fits on "c" with 20 bytes to spare does not fit on it.
        long_channel = "c" + "-" * 21

        async def post(path, body):
            self.assertLessEqual(len(body), MAX_MESSAGE)
            status, _, reply = await relay.ahttp_post(path, body, {"X-API-Key": KEY})
            return status, json.loads(reply)

        async with relay.ws_connect() as ws:
            await subscribe(ws, "c", id=1)
            await subscribe(ws, long_channel, id=2)
            status, reply = await post(
                "/api/publish", f'{{"channel":"c","data":{string_json(fits + 1)}}}')
            self.assertEqual(413, status)
            self.assertIn("message too large to deliver", reply["error"])
            # Fits on "c", not on the longer name: the whole broadcast is refused.
            status, reply = await post(
                "/api/broadcast",
                f'{{"channels":["c","{long_channel}"],"data":{string_json(fits - 20)}}}')
            self.assertEqual(413, status)
            self.assertEqual([], await ping_barrier(ws))
            # The largest that fits is delivered.
            status, reply = await post("/api/publish",
                                       f'{{"channel":"c","data":{string_json(fits)}}}')
            self.assertEqual((200, {"ok": True, "channels": 1}), (status, reply))
            self.assertEqual(fits, len((await recv_json(ws))["data"]))
        series = await relay.ametrics()
        self.assertEqual(2, metric(series, "wsrelay_too_large_messages_total", source="api"))
        self.assertEqual(1, metric(series, "wsrelay_broker_publishes_total"))

    async def test_the_largest_client_publish_allowed_is_delivered(self):
        """websocket.max_message_bytes = limits.send_queue_bytes - 10 (the configuration rule's
        bound): a publish of exactly that size reaches a subscriber, who is not closed."""
        relay = await self.start_relay({"limits.send_queue_bytes": QUEUE,
                                        "websocket.max_message_bytes": MAX_MESSAGE})
        async with relay.ws_connect() as sub, relay.ws_connect() as pub:
            await subscribe(sub, "c")
            head = '{"op":"publish","channel":"c","id":7,"data":'
            command = head + string_json(MAX_MESSAGE - len(head) - 3) + "}"
            self.assertEqual(MAX_MESSAGE, len(command))
            await pub.send(command)
            self.assertEqual({"op": "ack", "id": 7}, await recv_json(pub))
            frame = await recv_json(sub)
            self.assertEqual(MAX_MESSAGE - len(head) - 3, len(frame["data"]))
            self.assertEqual([], await ping_barrier(sub))
        series = await relay.ametrics()
        self.assertEqual(0, metric(series, "wsrelay_too_large_messages_total", source="client"))
        self.assertEqual(0, metric(series, "wsrelay_disconnects_total", code="4001"))


if __name__ == "__main__":
    unittest.main()
