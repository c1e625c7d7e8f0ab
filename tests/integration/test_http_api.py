"""POST /api/publish and /api/broadcast: key check, body framing and validation, delivery through
the broker."""

import asyncio
import http.client
import json
import socket
import unittest

from relay_harness import (HOST, IO_TIMEOUT, RelayTestCase, metric, ping_barrier, recv_json,
                           subscribe)

KEY = "test-key-123"


def post(port, path, body, key=KEY):
    """Returns (status, parsed JSON body)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=IO_TIMEOUT)
    try:
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["X-API-Key"] = key
        conn.request("POST", path, body=body if isinstance(body, (str, bytes)) else json.dumps(body),
                     headers=headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def raw_exchange(port, head, body=b""):
    """Sends a hand-written request (`head`: request line and header lines, without the blank
    line) and `body`, then reads until the server closes the connection. Returns (status, header
    dict with lower-case names, parsed JSON body). A server that never closes fails the read after
    IO_TIMEOUT."""
    data = b""
    with socket.create_connection((HOST, port), timeout=IO_TIMEOUT) as s:
        s.sendall(head.encode() + b"\r\n\r\n" + body)
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:  # closed with our unread body still in its buffer
                break
            if not chunk:
                break
            data += chunk
    header, _, payload = data.partition(b"\r\n\r\n")
    lines = header.decode().split("\r\n")
    if not lines[0].startswith("HTTP/1.1 "):
        raise AssertionError(f"no HTTP answer before the connection ended: {data!r}")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    length = int(headers["content-length"])
    return int(lines[0].split()[1]), headers, json.loads(payload[:length])


def post_head(path="/api/publish", *headers):
    return "\r\n".join([f"POST {path} HTTP/1.1", f"Host: {HOST}", f"X-API-Key: {KEY}",
                        "Content-Type: application/json", *headers])


class HttpApiTest(RelayTestCase):
    async def apost(self, path, body, key=KEY):
        return await asyncio.to_thread(post, self.relay.port, path, body, key)

    async def test_publish_reaches_subscribers_on_every_worker(self):
        self.relay = await self.start_relay({"api.key": KEY, "workers": 2})
        clients = [await self.relay.ws_connect().__aenter__() for _ in range(8)]
        try:
            for ws in clients:
                await subscribe(ws, "news")
            status, body = await self.apost("/api/publish", {"channel": "news", "data": {"n": 1}})
            self.assertEqual((200, {"ok": True, "channels": 1}), (status, body))
            for ws in clients:
                self.assertEqual({"op": "message", "channel": "news", "data": {"n": 1}},
                                 await recv_json(ws))
        finally:
            for ws in clients:
                await ws.close()

    async def test_broadcast_publishes_to_each_channel_once(self):
        self.relay = await self.start_relay({"api.key": KEY})
        async with self.relay.ws_connect() as a, self.relay.ws_connect() as b:
            await subscribe(a, "x")
            await subscribe(a, "y")
            await subscribe(b, "y")
            status, body = await self.apost("/api/broadcast",
                                            {"channels": ["x", "y", "z"], "data": "hi"})
            self.assertEqual((200, {"ok": True, "channels": 3}), (status, body))
            got_a = {(await recv_json(a))["channel"] for _ in range(2)}
            self.assertEqual({"x", "y"}, got_a)
            self.assertEqual({"op": "message", "channel": "y", "data": "hi"}, await recv_json(b))
            # Nothing more for either: a ping round trip proves the queue is empty.
            await ping_barrier(a)
            await ping_barrier(b)

    async def test_wrong_or_missing_key_is_401_and_publishes_nothing(self):
        self.relay = await self.start_relay({"api.key": KEY})
        async with self.relay.ws_connect() as ws:
            await subscribe(ws, "news")
            for key in (None, "", "test-key-12", "test-key-1234", "TEST-KEY-123"):
                status, body = await self.apost("/api/publish", {"channel": "news", "data": 1},
                                                key=key)
                self.assertEqual(401, status, key)
                self.assertIn("X-API-Key", body["error"])
            await ping_barrier(ws)
        series = await self.relay.ametrics()
        self.assertEqual(0, metric(series, "wsrelay_broker_publishes_total"))

    async def test_bad_bodies_are_400_with_a_reason(self):
        self.relay = await self.start_relay({"api.key": KEY})
        cases = [
            ("/api/publish", "not json"),
            ("/api/publish", "[1]"),
            ("/api/publish", {"channel": "news"}),
            ("/api/publish", {"data": 1}),
            ("/api/publish", {"channel": "bad name", "data": 1}),
            ("/api/publish", {"channel": 5, "data": 1}),
            ("/api/broadcast", {"channels": [], "data": 1}),
            ("/api/broadcast", {"channels": "news", "data": 1}),
            ("/api/broadcast", {"channels": ["ok", "bad name"], "data": 1}),
            ("/api/broadcast", {"channels": ["c%d" % i for i in range(1001)], "data": 1}),
        ]
        for path, body in cases:
            status, reply = await self.apost(path, body)
            self.assertEqual(400, status, (path, body))
            self.assertTrue(reply["error"], (path, body))

    async def test_body_over_the_message_limit_is_413(self):
        self.relay = await self.start_relay({"api.key": KEY, "websocket.max_message_bytes": 1024})
        status, reply = await self.apost("/api/publish", {"channel": "c", "data": "x" * 2000})
        self.assertEqual(413, status)
        self.assertEqual("body too large", reply["error"])

    async def test_body_framing_is_refused_at_once_and_the_connection_closed(self):
        """A body lws cannot delimit (chunked, or no Content-Length) and a Content-Length over the
        limit are answered from the request head alone, with connection: close."""
        self.relay = await self.start_relay({"api.key": KEY, "websocket.max_message_bytes": 1024})
        port = self.relay.port
        async with self.relay.ws_connect() as ws:
            await subscribe(ws, "news")
            body = json.dumps({"channel": "news", "data": 1}).encode()
            chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
            cases = [
                (post_head("/api/publish", "Transfer-Encoding: chunked"), chunked, 411,
                 "Transfer-Encoding"),
                (post_head("/api/broadcast", "Transfer-Encoding: chunked"), chunked, 411,
                 "Transfer-Encoding"),
                # Chunked wins over a Content-Length (RFC 9112 6.3): still refused.
                (post_head("/api/publish", "Transfer-Encoding: chunked",
                           f"Content-Length: {len(chunked)}"), chunked, 411, "Transfer-Encoding"),
                (post_head("/api/publish"), b"", 411, "Content-Length required"),
                (post_head("/api/broadcast"), b"", 411, "Content-Length required"),
                # Only the head is sent: an answer proves the body was not waited for.
                (post_head("/api/publish", "Content-Length: 10000000"), b"", 413, "body too large"),
                (post_head("/api/publish", "Content-Length: 1025"), b"", 413, "body too large"),
                (post_head("/api/publish", "Content-Length: 99999999999999999999999"), b"", 413,
                 "body too large"),
                (post_head("/api/publish", "Content-Length: -1"), b"", 400,
                 "invalid Content-Length"),
                (post_head("/api/publish", "Content-Length: 2x"), b"", 400,
                 "invalid Content-Length"),
                (post_head("/api/publish", f"Content-Length: {len(body)}",
                           f"Content-Length: {len(body)}"), body, 400, "invalid Content-Length"),
            ]
            for head, payload, status, reason in cases:
                got, headers, reply = await asyncio.to_thread(raw_exchange, port, head, payload)
                self.assertEqual((status, "close"), (got, headers.get("connection")), head)
                self.assertIn(reason, reply["error"], head)
            # Nothing was published.
            self.assertEqual([], await ping_barrier(ws))
        self.assertEqual(0, metric(await self.relay.ametrics(), "wsrelay_broker_publishes_total"))

    async def test_a_refusal_waits_for_the_body_then_closes(self):
        """A request refused for its key is answered once its body is read (lws 4.1.6 must never
        skip a body: it can take what follows for it), with Connection: close; what the client
        sent behind it on the same connection is not served, and the worker stays healthy."""
        self.relay = await self.start_relay({"api.key": KEY, "workers": 1})
        body = json.dumps({"channel": "news", "data": 1}).encode()

        def head(key):
            return (f"POST /api/publish HTTP/1.1\r\nHost: x\r\nX-API-Key: {key}\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                    ).encode()

        def refused_then_more():
            with socket.create_connection((HOST, self.relay.port), timeout=IO_TIMEOUT) as s:
                s.sendall(head("wrong") + body[:5])
                s.settimeout(0.2)
                with self.assertRaises(socket.timeout):  # no answer before the body
                    s.recv(1)
                s.settimeout(IO_TIMEOUT)
                s.sendall(body[5:] + head(KEY) + body)
                out = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        return out
                    out += chunk

        raw = await asyncio.to_thread(refused_then_more)
        self.assertEqual(1, raw.count(b"HTTP/1.1 "), raw)
        self.assertTrue(raw.startswith(b"HTTP/1.1 401 "), raw)
        self.assertIn(b"connection: close", raw.lower())
        self.assertEqual(0, metric(await self.relay.ametrics(), "wsrelay_broker_publishes_total"))
        status, reply = await self.apost("/api/publish", {"channel": "news", "data": 2})
        self.assertEqual((200, {"ok": True, "channels": 1}), (status, reply))

    async def test_duplicate_fields_are_400_like_client_commands(self):
        self.relay = await self.start_relay({"api.key": KEY})
        async with self.relay.ws_connect() as ws:
            await subscribe(ws, "news")
            cases = [
                ("/api/publish", '{"channel":"news","channel":"other","data":1}', "channel"),
                ("/api/publish", '{"channel":"news","data":1,"data":2}', "data"),
                # Compared unescaped: \u0063hannel is channel.
                ("/api/publish", '{"channel":"news","\\u0063hannel":"other","data":1}', "channel"),
                ("/api/broadcast", '{"channels":["news"],"data":1,"channels":["other"]}',
                 "channels"),
                ("/api/broadcast", '{"data":{"a":1},"channels":["news"],"data":2}', "data"),
            ]
            for path, body, field in cases:
                status, reply = await self.apost(path, body)
                self.assertEqual((400, {"error": f"duplicate field: {field}"}), (status, reply),
                                 body)
            # The client protocol follows the same rule.
            await ws.send('{"op":"publish","channel":"news","channel":"other","data":1,"id":2}')
            self.assertEqual({"op": "error", "id": 2, "code": 400, "reason": "duplicate field"},
                             await recv_json(ws))
            self.assertEqual([], await ping_barrier(ws))
            # Fields the API does not read are ignored, repeated or not; nested keys are data.
            status, reply = await self.apost(
                "/api/publish", '{"channel":"news","x":1,"x":2,"data":{"k":1,"k":2}}')
            self.assertEqual((200, {"ok": True, "channels": 1}), (status, reply))
            message = await ws.recv()
            self.assertEqual('{"op":"message","channel":"news","data":{"k":1,"k":2}}', message)

    async def test_api_is_off_without_a_key(self):
        self.relay = await self.start_relay()
        status, reply = await self.apost("/api/publish", {"channel": "c", "data": 1})
        self.assertEqual(403, status)
        self.assertIn("api.key", reply["error"])


if __name__ == "__main__":
    unittest.main()
