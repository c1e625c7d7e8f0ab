"""Frames the relay refuses: too big, invalid UTF-8, binary."""

import json
import unittest

from relay_harness import (OP_CONT, OP_PING, OP_TEXT, Closed, RelayTestCase, closed_with, metric,
                           request, subscribe)

MAX = 1024


def publish_of_size(size, id=1):
    """A valid publish command of exactly `size` bytes."""
    base = json.dumps({"op": "publish", "channel": "big", "data": "", "id": id})
    pad = size - len(base)
    assert pad >= 0
    text = json.dumps({"op": "publish", "channel": "big", "data": "x" * pad, "id": id})
    assert len(text) == size
    return text


class FrameTest(RelayTestCase):
    async def asyncSetUp(self):
        self.relay = await self.start_relay({"websocket.max_message_bytes": MAX})

    async def assert_counted(self, code):
        await self.relay.wait_metric(
            lambda s: metric(s, "wsrelay_disconnects_total", code=str(code)) >= 1,
            what=f"disconnects{{code={code}}} >= 1")

    async def test_message_at_the_limit_is_accepted(self):
        async with self.relay.ws_connect() as ws:
            await subscribe(ws, "big", id=1)
            await ws.send(publish_of_size(MAX, id=2))
            replies = [json.loads(await ws.recv()), json.loads(await ws.recv())]
            self.assertIn({"op": "ack", "id": 2}, replies)
            self.assertEqual(1, sum(1 for r in replies if r.get("op") == "message"))

    async def test_oversized_message_closes_with_1009(self):
        async with self.relay.ws_connect() as ws:
            self.assertEqual({"op": "pong", "id": 1}, await request(ws, {"op": "ping", "id": 1}))
            await ws.send(publish_of_size(MAX + 1, id=2))
            code, frames = await closed_with(ws)
            self.assertEqual(1009, code)
            self.assertEqual([], frames)
        await self.assert_counted(1009)

    async def test_oversized_fragmented_message_closes_with_1009(self):
        # Each fragment is small; the message they make is not.
        async with self.relay.ws_connect() as ws:
            text = publish_of_size(MAX + 200, id=2)
            await ws.send([text[:600], text[600:]])
            code, _ = await closed_with(ws)
            self.assertEqual(1009, code)

    async def test_fragmented_message_within_the_limit_is_reassembled(self):
        raw = await self.relay.raw_connect()
        try:
            text = json.dumps({"op": "ping", "id": 42})
            await raw.send_frame(OP_TEXT, text[:5], fin=False)
            await raw.send_frame(OP_CONT, text[5:9], fin=False)
            await raw.send_frame(OP_CONT, text[9:], fin=True)
            self.assertEqual({"op": "pong", "id": 42}, await raw.recv_json())
        finally:
            await raw.close()

    async def test_invalid_utf8_closes_with_1007(self):
        raw = await self.relay.raw_connect()
        try:
            await raw.send_json({"op": "ping", "id": 1})
            self.assertEqual({"op": "pong", "id": 1}, await raw.recv_json())
            await raw.send_frame(OP_TEXT, b'{"op":"ping","id":2,"x":"\xff\xfe"}')
            closed = await raw.wait_closed()
            self.assertEqual(1007, closed.code, closed)
        finally:
            await raw.close()
        await self.assert_counted(1007)

    async def test_invalid_utf8_through_websockets_client(self):
        async with self.relay.ws_connect() as ws:
            await ws.write_frame(True, OP_TEXT, b"\xc3\x28")
            code, _ = await closed_with(ws)
            self.assertEqual(1007, code)

    async def test_fragmented_control_frame_closes_with_1002(self):
        # RFC 6455 5.5: control frames must not be fragmented. (Unmasked client frames are a
        # violation too, but libwebsockets 4.1.6 accepts them and exposes no way to tell; see
        # docs/protocol.md.)
        raw = await self.relay.raw_connect()
        try:
            await raw.send_frame(OP_PING, b"x", fin=False)
            closed = await raw.wait_closed()
            self.assertEqual(1002, closed.code, closed)
        finally:
            await raw.close()

    async def test_binary_frame_closes_with_1003(self):
        async with self.relay.ws_connect() as ws:
            await ws.send(b'{"op":"ping","id":1}')
            code, frames = await closed_with(ws)
            self.assertEqual(1003, code)
            self.assertEqual([], frames)
        await self.assert_counted(1003)

    async def test_client_close_is_counted(self):
        async with self.relay.ws_connect() as ws:
            self.assertEqual({"op": "pong", "id": 1}, await request(ws, {"op": "ping", "id": 1}))
        # Leaving the context closed with 1000.
        await self.assert_counted(1000)
        await self.relay.wait_metric(lambda s: metric(s, "wsrelay_connections") == 0,
                                     what="connections back to 0")

    async def test_abrupt_disconnect_is_counted_as_1006(self):
        raw = await self.relay.raw_connect()
        await raw.send_json({"op": "ping", "id": 1})
        self.assertEqual({"op": "pong", "id": 1}, await raw.recv_json())
        raw.abort()
        await self.assert_counted(1006)
        await self.relay.wait_metric(lambda s: metric(s, "wsrelay_connections") == 0,
                                     what="connections back to 0")


if __name__ == "__main__":
    unittest.main()
