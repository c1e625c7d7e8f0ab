"""JWT auth (docs/auth.md) through the real relay: where the token travels, every refusal reason,
channel permissions, and the token's expiry on a live connection (warning, refresh, 4003)."""

import asyncio
import time
import unittest

from auth_tokens import (AuthTestCase, auth_config, claims, connect, count, forge, hmac_sha256,
                         jwk, new_rsa_key, now, query_path, shared_keys)
from relay_harness import (Relay, RelayError, closed_with, metric, ping_barrier, recv_json,
                           request, send_json, subscribe)

KEYS = shared_keys()


class HandshakeTest(AuthTestCase):
    async def test_every_algorithm_via_the_authorization_header(self):
        relay = await self.start_relay(auth_config())
        algorithms = ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384",
                      "EdDSA"]
        for alg in algorithms:
            with self.subTest(alg=alg):
                await self.assertAccepted(relay, self.tok(alg))
        with self.subTest(key="RSA key from a CERTIFICATE block"):
            await self.assertAccepted(relay, self.tok("RS256", key=KEYS.rsa_cert))
        series = await relay.ametrics()
        self.assertEqual(len(algorithms) + 1, metric(series, "wsrelay_handshakes_total",
                                                     result="ok"))
        self.assertEqual(0, count(series, "wsrelay_handshakes_total", result="auth"))
        self.assertNoTokenLogged(relay)

    async def test_query_parameter_when_turned_on(self):
        relay = await self.start_relay(auth_config({"auth.jwt.allow_query_token": True}))
        for alg in ("HS256", "RS256", "ES256", "EdDSA"):
            with self.subTest(alg=alg):
                await self.assertAccepted(relay, self.tok(alg), via="query")
        self.assertNoTokenLogged(relay)

    async def test_subprotocol_pair_is_answered_with_wsrelay_v1_only(self):
        relay = await self.start_relay(auth_config())
        for alg in ("HS256", "RS256", "ES256", "EdDSA"):
            with self.subTest(alg=alg):
                token = self.tok(alg)
                async with connect(relay, token, "subprotocol") as ws:
                    self.assertEqual("wsrelay.v1", ws.subprotocol)
                    self.assertEqual("wsrelay.v1", ws.response_headers["Sec-WebSocket-Protocol"])
                    self.assertEqual({"op": "pong", "id": 1},
                                     await request(ws, {"op": "ping", "id": 1}))
        self.assertNoTokenLogged(relay)

    async def test_bearer_subprotocol_without_wsrelay_v1_is_400(self):
        relay = await self.start_relay(auth_config())
        token = self.tok("HS256")
        status, _, body = await relay.ahttp_upgrade(
            "/ws", {"Sec-WebSocket-Protocol": f"wsrelay.bearer.{token}"})
        self.assertEqual(400, status, body)
        # wsrelay.v1 alone is fine as a subprotocol but carries no token.
        await self.assertRefused(relay, "missing token",
                                 headers={"Sec-WebSocket-Protocol": "wsrelay.v1"})
        self.assertNoTokenLogged(relay)

    async def test_query_token_refused_when_turned_off(self):
        relay = await self.start_relay(auth_config({"auth.jwt.allow_query_token": False}))
        await self.assertRefused(relay, "missing token", self.tok("HS256"), via="query")
        await self.assertAccepted(relay, self.tok("HS256"), via="bearer")
        await self.assertAccepted(relay, self.tok("HS256"), via="subprotocol")
        series = await relay.ametrics()
        self.assertEqual(1, count(series, "wsrelay_auth_failures_total", reason="missing"))
        self.assertNoTokenLogged(relay)

    async def test_query_token_is_off_by_default(self):
        config = auth_config()
        self.assertNotIn("auth.jwt.allow_query_token", config)
        relay = await self.start_relay(config)
        await self.assertRefused(relay, "missing token", self.tok("HS256"), via="query")
        await self.assertAccepted(relay, self.tok("HS256"), via="bearer")
        series = await relay.ametrics()
        self.assertEqual(1, count(series, "wsrelay_auth_failures_total", reason="missing"))
        self.assertNoTokenLogged(relay)

    async def test_first_place_found_wins(self):
        relay = await self.start_relay(auth_config({"auth.jwt.allow_query_token": True}))
        good, bad = self.tok("HS256"), "not-a-token"
        # Authorization before the subprotocol before ?token=.
        async with relay.ws_connect(query_path(bad),
                                    extra_headers={"Authorization": f"Bearer {good}"}) as ws:
            self.assertEqual({"op": "pong", "id": 1}, await request(ws, {"op": "ping", "id": 1}))
        async with relay.ws_connect(query_path(bad),
                                    subprotocols=["wsrelay.v1", f"wsrelay.bearer.{good}"]) as ws:
            self.assertEqual({"op": "pong", "id": 1}, await request(ws, {"op": "ping", "id": 1}))
        await self.assertRefused(relay, "malformed token", bad, via="bearer",
                                 path=query_path(good))
        await self.assertRefused(relay, "malformed token", bad, via="subprotocol",
                                 path=query_path(good))
        self.assertNoTokenLogged(relay)

    async def test_every_refusal_reason(self):
        issuer, audience = "https://issuer.test", ["wsrelay", "other-service"]
        relay = await self.start_relay(auth_config({"auth.jwt.issuer": issuer,
                                                    "auth.jwt.audience": audience,
                                                    "auth.jwt.allow_query_token": True}))

        def good(**extra):
            return claims(iss=issuer, aud="wsrelay", **extra)

        # The valid token, as a control, and aud as an array that holds one of the audiences.
        await self.assertAccepted(relay, self.tok("HS256", good()))
        await self.assertAccepted(relay, self.tok("RS256", claims(iss=issuer,
                                                                  aud=["x", "other-service"])))
        before = await relay.ametrics()

        unknown_rsa = await asyncio.to_thread(new_rsa_key)
        valid = self.tok("HS256", good())
        other_payload = self.tok("HS256", good(sub="mallory")).split(".")[1]
        h, _, s = valid.split(".")
        cases = [
            ("missing", "missing token", None),
            ("expired", "token expired", self.tok("HS256", good(exp=now() - 10))),
            ("expired", "token expired", self.tok("ES256", good(exp=now() - 1))),
            ("missing_exp", "missing exp claim", self.tok("HS256", good(ttl=None))),
            ("missing_exp", "missing exp claim", self.tok("EdDSA", good(ttl=None))),
            ("not_yet_valid", "token not yet valid", self.tok("HS256", good(nbf=now() + 60))),
            ("issuer", "wrong issuer",
             self.tok("HS256", claims(iss="https://evil.test", aud="wsrelay"))),
            ("issuer", "wrong issuer", self.tok("RS256", claims(aud="wsrelay"))),
            ("audience", "wrong audience", self.tok("HS256", claims(iss=issuer, aud="nope"))),
            ("audience", "wrong audience",
             self.tok("EdDSA", claims(iss=issuer, aud=["a", "b"]))),
            ("bad_signature", "bad signature",
             self.tok("HS256", good(), key="some-other-secret-of-32-bytes-or-so")),
            ("bad_signature", "bad signature",
             self.tok("RS256", good(), key=unknown_rsa)),
            ("bad_signature", "bad signature", self.remember(f"{h}.{other_payload}.{s}")),
            ("algorithm", "algorithm not allowed",
             self.remember(forge({"alg": "none", "typ": "JWT"}, good()))),
            ("algorithm", "algorithm not allowed",
             self.remember(forge({"alg": "none", "typ": "JWT"}, good(), lambda d: b"sig"))),
            ("algorithm", "algorithm not allowed",
             self.remember(forge({"alg": "PS256", "typ": "JWT"}, good(), lambda d: b"x" * 256))),
            ("malformed", "malformed token", "abc"),
            ("malformed", "malformed token", "a.b.c"),
            ("malformed", "malformed token", valid[:len(valid) // 2]),
            ("malformed", "malformed token", f"{h}.{s}"),
            ("claims", "missing user claim",
             self.tok("HS256", {"exp": now() + 300, "iss": issuer, "aud": "wsrelay"})),
            ("claims", "missing user claim", self.tok("HS256", good(sub=""))),
        ]
        expected = {}
        for label, reason, token in cases:
            with self.subTest(label=label, token=(token or "")[:40]):
                await self.assertRefused(relay, reason, token)
            expected[label] = expected.get(label, 0) + 1
        # The reason does not depend on where the token travels.
        expired = self.tok("HS256", good(exp=now() - 10))
        for via in ("subprotocol", "query"):
            with self.subTest(via=via):
                await self.assertRefused(relay, "token expired", expired, via=via)
            expected["expired"] += 1

        total = sum(expected.values())
        after = await relay.wait_metric(
            lambda s: count(s, "wsrelay_handshakes_total", result="auth")
            - count(before, "wsrelay_handshakes_total", result="auth") >= total,
            what=f"{total} more handshakes_total{{result=auth}}")
        self.assertEqual(total, count(after, "wsrelay_handshakes_total", result="auth")
                         - count(before, "wsrelay_handshakes_total", result="auth"))
        for label, n in expected.items():
            self.assertEqual(n, count(after, "wsrelay_auth_failures_total", reason=label)
                             - count(before, "wsrelay_auth_failures_total", reason=label), label)
        self.assertEqual(count(before, "wsrelay_handshakes_total", result="ok"),
                         count(after, "wsrelay_handshakes_total", result="ok"))
        self.assertNoTokenLogged(relay)

    async def test_hs256_keyed_with_the_rsa_public_key_is_refused(self):
        confused = self.remember(forge({"alg": "HS256", "typ": "JWT"}, claims(),
                                       hmac_sha256(KEYS.rsa_public_pem())))
        pem = KEYS.write_pem("rsa.pem", KEYS.rsa)
        only_rsa = await self.start_relay(auth_config({"auth.jwt.public_key_file": pem},
                                                      secret=False, pem=False))
        await self.assertRefused(only_rsa, "algorithm not allowed", confused)
        await self.assertAccepted(only_rsa, self.tok("RS256"))
        both = await self.start_relay(auth_config({"auth.jwt.public_key_file": pem}, pem=False))
        await self.assertRefused(both, "bad signature", confused)
        await self.assertAccepted(both, self.tok("HS256"))
        series = await only_rsa.ametrics()
        self.assertEqual(1, count(series, "wsrelay_auth_failures_total", reason="algorithm"))
        series = await both.ametrics()
        self.assertEqual(1, count(series, "wsrelay_auth_failures_total", reason="bad_signature"))
        self.assertNoTokenLogged(only_rsa)
        self.assertNoTokenLogged(both)

    async def test_rsa_key_under_2048_bits_stops_startup(self):
        weak = await asyncio.to_thread(new_rsa_key, 1024)
        for name, keys, certificates, block in (
                ("weak.pem", [weak], [], "PEM block 1 (PUBLIC KEY)"),
                ("weak-cert.pem", [KEYS.rsa, KEYS.ec256], [weak], "PEM block 3 (CERTIFICATE)")):
            with self.subTest(file=name):
                pem = KEYS.write_pem(name, *keys, certificates=certificates)
                relay = Relay(auth_config({"auth.jwt.public_key_file": pem}, pem=False),
                              check_exit=False)
                try:
                    with self.assertRaises(RelayError):
                        await asyncio.to_thread(relay.start)
                    self.assertNotEqual(0, relay.returncode, relay.log())
                    self.assertIn(f"auth.jwt.public_key_file: {pem}: {block}: RSA key of 1024 "
                                  "bits (at least 2048 are required)", relay.log())
                finally:
                    await asyncio.to_thread(relay.close)
        # The same file with a 2048-bit key in its place starts.
        pem = KEYS.write_pem("strong-cert.pem", KEYS.rsa, KEYS.ec256, certificates=[KEYS.rsa_cert])
        relay = await self.start_relay(auth_config({"auth.jwt.public_key_file": pem}, pem=False))
        await self.assertAccepted(relay, self.tok("RS256", key=KEYS.rsa_cert))

    async def test_algorithms_setting_narrows_what_the_keys_allow(self):
        relay = await self.start_relay(auth_config({"auth.jwt.algorithms": ["RS256", "EdDSA"]}))
        await self.assertAccepted(relay, self.tok("RS256"))
        await self.assertAccepted(relay, self.tok("EdDSA"))
        for alg in ("HS256", "RS384", "ES256"):
            with self.subTest(alg=alg):
                await self.assertRefused(relay, "algorithm not allowed", self.tok(alg))

    async def test_leeway_on_exp_and_nbf(self):
        relay = await self.start_relay(auth_config({"auth.jwt.leeway_ms": 10000}))
        for payload in (claims(exp=now() - 3), claims(nbf=now() + 3)):
            with self.subTest(payload=payload):
                async with connect(relay, self.tok("HS256", payload)) as ws:
                    # Inside the leeway the token is still valid; it is about to expire, so a
                    # token_expiring frame may come first.
                    frames = await ping_barrier(ws)
                    self.assertTrue(all(f["op"] == "token_expiring" for f in frames), frames)
        await self.assertRefused(relay, "token expired", self.tok("HS256", claims(exp=now() - 15)))
        await self.assertRefused(relay, "token not yet valid",
                                 self.tok("HS256", claims(nbf=now() + 30)))
        self.assertNoTokenLogged(relay)

    async def test_unknown_kid(self):
        jwks = KEYS.write_jwks("kid.json", [jwk(KEYS.rsa, kid="k1"), jwk(KEYS.ec256, kid="e1")])
        relay = await self.start_relay(auth_config({"auth.jwt.jwks_url": f"file://{jwks}"},
                                                   secret=False, pem=False))
        await self.assertAccepted(relay, self.tok("RS256", kid="k1"))
        await self.assertAccepted(relay, self.tok("ES256", kid="e1"))
        await self.assertRefused(relay, "unknown key", self.tok("RS256", kid="k9"))
        await self.assertRefused(relay, "unknown key", self.tok("ES256", kid="k1-but-not"))
        series = await relay.ametrics()
        self.assertEqual(2, count(series, "wsrelay_auth_failures_total", reason="unknown_key"))
        self.assertNoTokenLogged(relay)


class PermissionsTest(AuthTestCase):
    async def asyncSetUp(self):
        # One worker: a client's publish and the HTTP API's reach subscribers in the order sent,
        # which is what proves an absence below.
        self.relay = await self.start_relay(auth_config({
            "workers": 1,
            "auth.permissions.subscribe": ["user:{sub}", "inbox:{sub}"],
            "auth.permissions.auto_subscribe": ["user:{sub}"],
        }))
        self.alice = self.tok("HS256", claims("alice", channels=["room:1", "news:*"],
                                              publish=["room:1"]))

    async def test_subscribe_only_within_the_grant(self):
        relay = self.relay
        async with connect(relay, self.alice) as ws:
            await subscribe(ws, "room:1", id=1)
            await subscribe(ws, "news:x", id=2)
            await subscribe(ws, "inbox:alice", id=3)
            for i, channel in enumerate(["room:2", "room:10", "room:", "news", "inbox:bob",
                                         "user:bob"], start=10):
                with self.subTest(channel=channel):
                    reply = await request(ws, {"op": "subscribe", "channel": channel, "id": i})
                    self.assertEqual({"op": "error", "id": i, "code": 403,
                                      "reason": "not allowed to subscribe to this channel"}, reply)
            # Nothing from the refused channel: it was published first, yet room:1's comes first.
            await self.api_publish(relay, "room:2", "must not arrive")
            await self.api_publish(relay, "room:1", "first")
            self.assertEqual({"op": "message", "channel": "room:1", "data": "first"},
                             await recv_json(ws))
            await self.api_publish(relay, "news:x", "n")
            self.assertEqual({"op": "message", "channel": "news:x", "data": "n"},
                             await recv_json(ws))
            self.assertEqual([], await ping_barrier(ws))
        self.assertNoTokenLogged(relay)

    async def test_publish_only_within_the_grant(self):
        relay = self.relay
        reader = self.tok("HS256", claims("bob", channels=["room:*", "news:*"]))
        async with connect(relay, self.alice) as alice, connect(relay, reader) as bob:
            await subscribe(bob, "room:1", id=1)
            await subscribe(bob, "news:x", id=2)
            # Reading a channel does not allow writing to it.
            self.assertEqual({"op": "error", "id": 3, "code": 403,
                              "reason": "not allowed to publish to this channel"},
                             await request(bob, {"op": "publish", "channel": "room:1",
                                                 "data": "forbidden", "id": 3}))
            self.assertEqual({"op": "ack", "id": 4}, await request(
                alice, {"op": "publish", "channel": "room:1", "data": "allowed", "id": 4}))
            self.assertEqual({"op": "error", "id": 5, "code": 403,
                              "reason": "not allowed to publish to this channel"},
                             await request(alice, {"op": "publish", "channel": "news:x",
                                                   "data": "forbidden", "id": 5}))
            await self.api_publish(relay, "news:x", "marker")
            self.assertEqual({"op": "message", "channel": "room:1", "data": "allowed"},
                             await recv_json(bob))
            self.assertEqual({"op": "message", "channel": "news:x", "data": "marker"},
                             await recv_json(bob))
            self.assertEqual([], await ping_barrier(bob))
        self.assertNoTokenLogged(relay)

    async def test_auto_subscribe_and_sub_patterns(self):
        relay = self.relay
        async with connect(relay, self.alice) as ws:
            # No subscribe: the connection is in user:alice from its first moment.
            await self.api_publish(relay, "user:alice", {"hello": "alice"})
            self.assertEqual({"op": "message", "channel": "user:alice",
                              "data": {"hello": "alice"}}, await recv_json(ws))
            await subscribe(ws, "inbox:alice", id=1)
            self.assertEqual({"op": "error", "id": 2, "code": 403,
                              "reason": "not allowed to subscribe to this channel"},
                             await request(ws, {"op": "subscribe", "channel": "user:bob",
                                                "id": 2}))
            # An auto-subscription can be left like any other.
            self.assertEqual({"op": "ack", "id": 3}, await request(
                ws, {"op": "unsubscribe", "channel": "user:alice", "id": 3}))
            await self.api_publish(relay, "user:alice", "gone")
            await self.api_publish(relay, "inbox:alice", "still here")
            self.assertEqual({"op": "message", "channel": "inbox:alice", "data": "still here"},
                             await recv_json(ws))
        self.assertNoTokenLogged(relay)

    async def test_integer_user_id(self):
        relay = self.relay
        token = self.tok("HS256", {"sub": 42, "exp": now() + 300})
        async with connect(relay, token) as ws:
            await subscribe(ws, "inbox:42", id=1)
            await self.api_publish(relay, "user:42", "to 42")
            self.assertEqual({"op": "message", "channel": "user:42", "data": "to 42"},
                             await recv_json(ws))
        self.assertNoTokenLogged(relay)


WARNING_MS = 2000


class ExpiryTest(AuthTestCase):
    async def expect_warning(self, ws, exp, warning_ms):
        frame = await recv_json(ws, timeout=max(0.0, exp - time.time()) + 2)
        received = time.time()
        self.assertEqual("token_expiring", frame.get("op"), frame)
        self.assertEqual(exp, frame.get("exp"), frame)
        in_ms = frame.get("in_ms")
        self.assertIsInstance(in_ms, int, frame)
        self.assertGreater(in_ms, 0, frame)
        self.assertLessEqual(in_ms, warning_ms + 100, frame)
        # in_ms counts down to exp (no leeway configured).
        self.assertAlmostEqual(exp, received + in_ms / 1000, delta=0.5, msg=frame)
        return frame

    async def expect_expiry_close(self, ws, exp):
        code, frames = await closed_with(ws, timeout=max(0.0, exp - time.time()) + 3)
        closed_at = time.time()
        self.assertEqual(4003, code, frames)
        self.assertEqual("token expired", ws.close_reason)
        self.assertEqual([], frames)
        # Not (much) before exp: exp is whole seconds of the wall clock.
        self.assertGreaterEqual(closed_at, exp - 0.25)
        self.assertLess(closed_at, exp + 2.0)

    async def test_warning_then_close_4003(self):
        relay = await self.start_relay(auth_config({"auth.expiry_warning_ms": WARNING_MS}))
        exp = now() + 3
        async with connect(relay, self.tok("HS256", claims(exp=exp))) as ws:
            await self.expect_warning(ws, exp, WARNING_MS)
            self.assertLess(time.time(), exp - 0.5, "the warning came too late")
            await self.expect_expiry_close(ws, exp)
        await relay.wait_metric(
            lambda s: metric(s, "wsrelay_disconnects_total", code="4003") == 1,
            what="disconnects{code=4003} == 1")
        self.assertNoTokenLogged(relay)

    async def test_refresh_moves_the_deadline(self):
        # require_exp off for the second connection, whose token has no exp.
        relay = await self.start_relay(auth_config({"auth.expiry_warning_ms": WARNING_MS,
                                                    "auth.jwt.require_exp": False}))
        exp = now() + 3
        async with connect(relay, self.tok("HS256", claims(exp=exp))) as ws, \
                connect(relay, self.tok("HS256", claims("service", ttl=None))) as forever:
            await self.expect_warning(ws, exp, WARNING_MS)
            fresh = self.tok("HS256", claims(exp=now() + 30))
            self.assertEqual({"op": "ack", "id": 7},
                             await request(ws, {"op": "refresh", "token": fresh, "id": 7}))
            # The event under test is an absence (no close at the old exp): wait past it, bounded.
            await asyncio.sleep(max(0.0, exp + 1.5 - time.time()))
            self.assertEqual([], await ping_barrier(ws))
            self.assertTrue(ws.open)
            # A token without exp (accepted: require_exp is off) never expires on the connection.
            self.assertEqual([], await ping_barrier(forever))
        series = await relay.ametrics()
        self.assertEqual(1, metric(series, "wsrelay_token_refreshes_total", result="ok"))
        self.assertEqual(0, metric(series, "wsrelay_disconnects_total", code="4003"))
        self.assertNoTokenLogged(relay)

    async def test_refused_refresh_keeps_the_old_deadline(self):
        # The default warning (60 s) is longer than the token's life: the warning comes at once.
        relay = await self.start_relay(auth_config())
        exp = now() + 3
        async with connect(relay, self.tok("HS256", claims(exp=exp))) as ws:
            await self.expect_warning(ws, exp, 3000)
            refusals = [
                (self.tok("HS256", claims("mallory", ttl=60)), "different user"),
                (self.tok("HS256", claims(exp=now() - 5)), "token expired"),
                (self.tok("HS256", claims(ttl=None)), "missing exp claim"),
                (self.tok("HS256", claims(ttl=60), key="wrong-secret-wrong-secret-wrong"),
                 "bad signature"),
                ("garbage", "malformed token"),
            ]
            for i, (token, reason) in enumerate(refusals, start=1):
                with self.subTest(reason=reason):
                    self.assertEqual({"op": "error", "id": i, "code": 401, "reason": reason},
                                     await request(ws, {"op": "refresh", "token": token, "id": i}))
            await self.expect_expiry_close(ws, exp)
        series = await relay.wait_metric(
            lambda s: metric(s, "wsrelay_disconnects_total", code="4003") == 1,
            what="disconnects{code=4003} == 1")
        self.assertEqual(len(refusals),
                         metric(series, "wsrelay_token_refreshes_total", result="rejected"))
        self.assertEqual(0, metric(series, "wsrelay_token_refreshes_total", result="ok"))
        self.assertNoTokenLogged(relay)

    async def test_refresh_that_narrows_channels_unsubscribes(self):
        relay = await self.start_relay(auth_config({"workers": 1}))
        wide = self.tok("HS256", claims(channels=["room:1", "room:2"]))
        narrow = self.tok("HS256", claims(channels=["room:1"]))
        async with connect(relay, wide) as ws:
            await subscribe(ws, "room:1", id=1)
            await subscribe(ws, "room:2", id=2)
            await send_json(ws, {"op": "refresh", "token": narrow, "id": 3})
            frames = [await recv_json(ws), await recv_json(ws)]
            self.assertCountEqual([{"op": "ack", "id": 3},
                                   {"op": "unsubscribed", "channel": "room:2",
                                    "reason": "forbidden"}], frames)
            self.assertEqual([], await ping_barrier(ws))
            await self.api_publish(relay, "room:2", "must not arrive")
            await self.api_publish(relay, "room:1", "first")
            self.assertEqual({"op": "message", "channel": "room:1", "data": "first"},
                             await recv_json(ws))
            self.assertEqual({"op": "error", "id": 4, "code": 403,
                              "reason": "not allowed to subscribe to this channel"},
                             await request(ws, {"op": "subscribe", "channel": "room:2", "id": 4}))
            # A wider token widens the grant again.
            self.assertEqual({"op": "ack", "id": 5},
                             await request(ws, {"op": "refresh", "token": wide, "id": 5}))
            await subscribe(ws, "room:2", id=6)
        series = await relay.ametrics()
        self.assertEqual(2, metric(series, "wsrelay_token_refreshes_total", result="ok"))
        self.assertNoTokenLogged(relay)

    async def test_refresh_without_auth_is_400(self):
        relay = await self.start_relay()
        async with relay.ws_connect() as ws:
            reply = await request(ws, {"op": "refresh", "token": self.tok("HS256"), "id": 1})
            self.assertEqual({"op": "error", "id": 1, "code": 400,
                              "reason": "authentication is disabled"}, reply)


if __name__ == "__main__":
    unittest.main()
