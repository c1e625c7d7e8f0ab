"""The relay on a Redis reached over TLS (rediss://): pub/sub and history through it, a server that
requires client certificates, and the startup errors for the wrong CA and a name mismatch. The
Redis TLS unit of work (Sentinel, Cluster, the transport) is tested in tests/redis."""

import asyncio
import unittest

from relay_harness import (Relay, RelayError, RelayTestCase, free_port, ping_barrier, recv_json,
                           redis_overrides, request, subscribe)
from tls_pki import pki_path, redis_tls_args


class RedisTlsTest(RelayTestCase):
    def start_tls_redis(self, auth_clients="no"):
        port = free_port()
        redis = self.start_redis(redis_tls_args(port, auth_clients))
        return redis, port

    def tls_overrides(self, redis, port, **extra):
        out = redis_overrides(redis, {
            "broker.redis.url": f"rediss://127.0.0.1:{port}/0",
            "broker.redis.tls.ca_file": pki_path("ca.crt"),
        })
        out.update(extra)
        return out

    async def refused_at_startup(self, overrides):
        """Starts a relay that must exit before it is ready; returns its log."""
        relay = Relay(overrides, check_exit=False)
        try:
            with self.assertRaises(RelayError):
                await asyncio.to_thread(relay.start)
            self.assertIsNotNone(relay.returncode)
            self.assertNotEqual(0, relay.returncode, relay.log())
            return relay.log()
        finally:
            await asyncio.to_thread(relay.close)

    async def test_pubsub_and_history_over_tls(self):
        redis, port = self.start_tls_redis()
        relay = await self.start_relay(self.tls_overrides(redis, port, **{
            "channels": [{"pattern": "kept:*", "history_size": 10}]}))
        self.assertIn("over TLS", relay.log())
        async with relay.ws_connect() as a, relay.ws_connect() as b:
            await subscribe(a, "room:1", id=1)
            ack = await request(a, {"op": "subscribe", "channel": "kept:1", "id": 2})
            self.assertEqual("ack", ack["op"], ack)
            self.assertEqual({"op": "ack", "id": 3}, await request(
                b, {"op": "publish", "channel": "room:1", "data": {"n": 1}, "id": 3}))
            self.assertEqual({"op": "message", "channel": "room:1", "data": {"n": 1}},
                             await recv_json(a))
            # A backend publishing on the plain port reaches the relay's TLS subscriber.
            self.assertGreaterEqual(await redis.apublish("room:1", '{"n":2}'), 1)
            self.assertEqual({"op": "message", "channel": "room:1", "data": {"n": 2}},
                             await recv_json(a))
            # History goes through the function library over the same TLS connection.
            ack = await request(b, {"op": "publish", "channel": "kept:1", "data": "h", "id": 4})
            self.assertEqual("ack", ack["op"], ack)
            message = await recv_json(a)
            self.assertEqual(("message", "kept:1", "h", 1),
                             (message["op"], message["channel"], message["data"],
                              message.get("offset")), message)
            reply = await request(b, {"op": "history", "channel": "kept:1", "id": 5})
            self.assertEqual([1], [m["offset"] for m in reply["messages"]], reply)
            self.assertEqual([], await ping_barrier(a))

    async def test_client_certificate_required(self):
        redis, port = self.start_tls_redis(auth_clients="yes")
        log = await self.refused_at_startup(self.tls_overrides(redis, port))
        self.assertIn("broker.redis.tls.cert_file", log)
        relay = await self.start_relay(self.tls_overrides(redis, port, **{
            "broker.redis.tls.cert_file": pki_path("client.crt"),
            "broker.redis.tls.key_file": pki_path("client.key"),
        }))
        async with relay.ws_connect() as a:
            await subscribe(a, "room:1", id=1)
            self.assertGreaterEqual(await redis.apublish("room:1", '"hi"'), 1)
            self.assertEqual({"op": "message", "channel": "room:1", "data": "hi"},
                             await recv_json(a))

    async def test_wrong_ca_stops_startup_naming_the_key(self):
        redis, port = self.start_tls_redis()
        log = await self.refused_at_startup(self.tls_overrides(redis, port, **{
            "broker.redis.tls.ca_file": pki_path("other-ca.crt")}))
        self.assertIn("startup failed: TLS to Redis at 127.0.0.1:", log)
        self.assertIn("certificate verify failed", log)
        self.assertIn("broker.redis.tls.ca_file " + pki_path("other-ca.crt"), log)

    async def test_name_mismatch_stops_startup(self):
        redis, port = self.start_tls_redis()
        log = await self.refused_at_startup(self.tls_overrides(redis, port, **{
            "broker.redis.tls.server_name": "redis.example.net"}))
        self.assertIn("hostname mismatch", log)
        self.assertIn("broker.redis.tls.server_name", log)

    async def test_redis_down_at_startup_is_not_a_tls_error(self):
        redis = self.start_redis(start=False)
        port = free_port()
        relay = await self.start_relay(self.tls_overrides(redis, port))
        status, _, _ = await relay.ahttp_get("/readyz")
        self.assertEqual(503, status)


if __name__ == "__main__":
    unittest.main()
