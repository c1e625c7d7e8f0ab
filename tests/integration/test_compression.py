"""permessage-deflate (websocket.compression): negotiated when a client offers it; each message
compressed once per worker and its frame shared by the subscribers that negotiated it (RSV1 set),
plain frames for the others and for small messages; client messages inflated by lws and refused
with 1009 once they inflate past websocket.max_message_bytes."""

import json
import unittest
import zlib

from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

from relay_harness import (OP_PING, OP_PONG, OP_TEXT, RelayTestCase, closed_with, metric,
                           recv_json, request, subscribe)

OFFER = "permessage-deflate; client_max_window_bits"
TAIL = b"\x00\x00\xff\xff"


def big_json(n=2000, seed=1):
    """A JSON value of about n bytes that compresses like real data."""
    items, i = [], seed
    while len(json.dumps(items)) < n:
        i = (i * 1103515245 + 12345) % 2**31
        items.append({"symbol": ["AAPL", "MSFT", "GOOG"][i % 3], "price": i % 10007,
                      "volume": i % 997, "ok": i % 2 == 0})
    return items


def message(channel, data):
    return {"op": "message", "channel": channel, "data": data}


def extensions_of(head):
    for line in head.decode().split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "sec-websocket-extensions":
            return value.strip()
    return None


class RawSubscriber:
    """A raw RFC 6455 client that reports each message's RSV1 bit and inflates it itself, with one
    inflater kept for the whole connection (a client that keeps its context, as RFC 7692 allows
    unless server_no_context_takeover was agreed)."""

    def __init__(self, ws):
        self.ws = ws
        self.inflater = zlib.decompressobj(-15)

    async def message(self):
        """(compressed, parsed JSON) of the next data message."""
        while True:
            fin, opcode, payload = await self.ws.read_frame()
            if opcode == OP_PING:
                await self.ws.send_frame(OP_PONG, payload)
                continue
            if opcode == OP_PONG:
                continue
            if opcode != OP_TEXT or not fin:
                raise AssertionError(f"unexpected frame {opcode:#x} fin={fin}")
            compressed = bool(self.ws.last_rsv & 0x40)
            if self.ws.last_rsv & 0x30:
                raise AssertionError(f"RSV2/RSV3 set: {self.ws.last_rsv:#x}")
            if compressed:
                payload = self.inflater.decompress(payload + TAIL)
            return compressed, json.loads(payload.decode())

    async def subscribe(self, channel):
        await self.ws.send_json({"op": "subscribe", "channel": channel, "id": 1})
        compressed, frame = await self.message()
        assert not compressed and frame == {"op": "ack", "id": 1}, frame


class CompressionTest(RelayTestCase):
    async def publish(self, relay, channel, data):
        async with relay.ws_connect() as pub:
            reply = await request(pub, {"op": "publish", "channel": channel, "data": data,
                                        "id": 7})
            self.assertEqual(reply, {"op": "ack", "id": 7})

    async def test_python_websockets_negotiates_it_and_receives_the_json(self):
        relay = await self.start_relay()
        async with relay.ws_connect(compression="deflate") as sub, \
                relay.ws_connect(compression="deflate") as pub:
            self.assertIn("permessage-deflate", sub.response_headers["Sec-WebSocket-Extensions"])
            await subscribe(sub, "prices")
            data = big_json()
            # Its own messages go compressed too: lws inflates them.
            self.assertEqual(await request(pub, {"op": "publish", "channel": "prices",
                                                 "data": data, "id": 2}),
                             {"op": "ack", "id": 2})
            self.assertEqual(await recv_json(sub),
                             {"op": "message", "channel": "prices", "data": data})
            await request(pub, {"op": "publish", "channel": "prices", "data": {"a": 1}, "id": 3})
            self.assertEqual(await recv_json(sub),
                             {"op": "message", "channel": "prices", "data": {"a": 1}})
            # A large client message, well compressed, under the limit once inflated.
            large = big_json(60000)
            await request(pub, {"op": "publish", "channel": "prices", "data": large, "id": 4})
            self.assertEqual((await recv_json(sub))["data"], large)
            series = await relay.ametrics()
            self.assertEqual(metric(series, "wsrelay_deflate_connections"), 2)
            self.assertEqual(metric(series, "wsrelay_compressed_frames_total"), 2)
            into = metric(series, "wsrelay_compression_bytes_total", stage="in")
            out = metric(series, "wsrelay_compression_bytes_total", stage="out")
            self.assertGreater(into, 2 * out)
        await relay.wait_metric(
            lambda s: metric(s, "wsrelay_deflate_connections") == 0, what="deflate gauge at 0")

    async def test_a_large_message_has_rsv1_set_and_a_small_one_not(self):
        relay = await self.start_relay()
        ws = await relay.raw_connect(extensions=OFFER)
        try:
            self.assertEqual(extensions_of(ws.response_head), "permessage-deflate")
            sub = RawSubscriber(ws)
            await sub.subscribe("c")
            for i in range(3):
                data = big_json(1500, seed=i)
                await self.publish(relay, "c", data)
                self.assertEqual(await sub.message(), (True, message("c", data)))
            await self.publish(relay, "c", {"small": True})
            self.assertEqual(await sub.message(), (False, message("c", {"small": True})))
        finally:
            await ws.close()

    async def test_no_context_takeover_is_echoed_when_offered(self):
        relay = await self.start_relay()
        ws = await relay.raw_connect(extensions="permessage-deflate; server_no_context_takeover; "
                                                "client_no_context_takeover")
        try:
            self.assertEqual(extensions_of(ws.response_head),
                             "permessage-deflate; server_no_context_takeover; "
                             "client_no_context_takeover")
            sub = RawSubscriber(ws)
            await sub.subscribe("c")
            data = big_json()
            await self.publish(relay, "c", data)
            self.assertEqual(await sub.message(), (True, message("c", data)))
        finally:
            await ws.close()

    async def test_clients_that_offer_nothing_get_plain_frames(self):
        relay = await self.start_relay()
        ws = await relay.raw_connect()
        try:
            self.assertIsNone(extensions_of(ws.response_head))
            sub = RawSubscriber(ws)
            await sub.subscribe("c")
            data = big_json()
            await self.publish(relay, "c", data)
            self.assertEqual(await sub.message(), (False, message("c", data)))
        finally:
            await ws.close()
        # Nobody on the channel negotiated it: nothing was compressed.
        self.assertEqual(metric(await relay.ametrics(), "wsrelay_compressed_frames_total"), 0)

    async def test_mixed_subscribers_of_one_channel_each_get_the_message(self):
        relay = await self.start_relay({"workers": 1})
        raw_zip = await relay.raw_connect(extensions=OFFER)
        raw_plain = await relay.raw_connect()
        async with relay.ws_connect(compression="deflate") as ws_zip, \
                relay.ws_connect() as ws_plain:
            try:
                raws = [RawSubscriber(raw_zip), RawSubscriber(raw_plain)]
                for raw in raws:
                    await raw.subscribe("mix")
                for ws in (ws_zip, ws_plain):
                    await subscribe(ws, "mix")
                for i in range(5):
                    data = big_json(1000 + 300 * i, seed=i) if i % 2 == 0 else {"i": i}
                    await self.publish(relay, "mix", data)
                    expected = message("mix", data)
                    self.assertEqual(await raws[0].message(), (i % 2 == 0, expected))
                    self.assertEqual(await raws[1].message(), (False, expected))
                    for ws in (ws_zip, ws_plain):
                        self.assertEqual(await recv_json(ws), expected)
                # One compression per message, whatever the number of subscribers.
                series = await relay.ametrics()
                self.assertEqual(metric(series, "wsrelay_compressed_frames_total"), 3)
                self.assertEqual(metric(series, "wsrelay_deflate_connections"), 2)
            finally:
                await raw_zip.close()
                await raw_plain.close()

    async def test_a_client_message_that_inflates_past_the_limit_closes_1009(self):
        relay = await self.start_relay({"websocket": {"max_message_bytes": 65536}})
        async with relay.ws_connect(compression="deflate") as ws:
            # About 1 MB inflated, a few KB on the wire.
            bomb = json.dumps({"op": "publish", "channel": "c", "data": "a" * 1000000, "id": 1})
            await ws.send(bomb)
            code, _ = await closed_with(ws)
            self.assertEqual(code, 1009)
        series = await relay.wait_metric(
            lambda s: metric(s, "wsrelay_disconnects_total", code="1009") == 1,
            what="the 1009 close counted")
        # Refused after at most the limit of inflated bytes: nothing was published.
        self.assertEqual(metric(series, "wsrelay_broker_publishes_total"), 0)

    async def test_with_compression_off_the_offer_is_ignored(self):
        relay = await self.start_relay({"websocket": {"compression": False}})
        ws = await relay.raw_connect(extensions=OFFER)
        try:
            self.assertIsNone(extensions_of(ws.response_head))
            sub = RawSubscriber(ws)
            await sub.subscribe("c")
            data = big_json()
            await self.publish(relay, "c", data)
            self.assertEqual(await sub.message(), (False, message("c", data)))
        finally:
            await ws.close()

    async def test_server_no_context_takeover_alone_is_declined(self):
        """lws 4.1.6 would forget the client's context after each message, while the client goes
        on compressing against it: its second message would not inflate."""
        relay = await self.start_relay()
        offer = [ClientPerMessageDeflateFactory(server_no_context_takeover=True)]
        async with relay.ws_connect(extensions=offer) as ws:
            self.assertNotIn("Sec-WebSocket-Extensions", ws.response_headers)
            await subscribe(ws, "c")
            data = big_json()
            for i in range(3):
                await ws.send(json.dumps({"op": "publish", "channel": "c", "data": data,
                                          "id": 2 + i}))
                frames = [await recv_json(ws), await recv_json(ws)]
                self.assertIn(message("c", data), frames)
                self.assertIn({"op": "ack", "id": 2 + i}, frames)

    async def test_an_offer_that_limits_the_server_window_is_declined(self):
        """lws would accept it without answering the window size RFC 7692 asks for."""
        relay = await self.start_relay()
        ws = await relay.raw_connect(extensions="permessage-deflate; server_max_window_bits=10")
        try:
            self.assertIsNone(extensions_of(ws.response_head))
            sub = RawSubscriber(ws)
            await sub.subscribe("c")
            data = big_json()
            await self.publish(relay, "c", data)
            self.assertEqual(await sub.message(), (False, message("c", data)))
        finally:
            await ws.close()


if __name__ == "__main__":
    unittest.main()
