"""JWK Sets (docs/auth.md, "JWKS: rotation and outages"): served over HTTP by jwks_server.py in a
process of its own, or read from file://. Key rotation without a restart, an identity provider
that is down at start or fails later, and the refresh metrics."""

import asyncio
import json
import secrets
import time
import unittest

from auth_tokens import (AuthTestCase, auth_config, claims, count, jwk, new_rsa_key, shared_keys,
                         write_atomically, write_jwks)
from jwks_server import JwksServer
from relay_harness import HOST, Relay, RelayError, free_port, metric, wait_until

KEYS = shared_keys()


def jwks_config(url, extra=None):
    config = auth_config({"auth.jwt.jwks_url": url, "auth.jwt.jwks_min_refresh_ms": 200},
                         secret=False, pem=False)
    config.update(extra or {})
    return config


class JwksTestCase(AuthTestCase):
    def setUp(self):
        super().setUp()
        self.k1 = KEYS.rsa
        self.k2 = KEYS.rsa_cert
        self.jwks_file = KEYS.path(f"{self._testMethodName}.jwks.json")
        write_jwks(self.jwks_file, [jwk(self.k1, kid="k1")])

    def start_jwks(self, port=0):
        server = JwksServer(self.jwks_file, port=port).start()
        self.addCleanup(server.stop)
        return server

    def k1_token(self):
        return self.tok("RS256", claims(), key=self.k1, kid="k1")

    def k2_token(self):
        return self.tok("RS256", claims(), key=self.k2, kid="k2")

    async def handshake_status(self, relay, token):
        """101, or (status, reason) of a refusal."""
        self.remember(token)
        status, _, body = await relay.ahttp_upgrade(
            "/ws", {"Authorization": f"Bearer {token}"})
        if status == 101:
            return 101
        return status, json.loads(body).get("reason")

    def accepted_check(self, relay, token):
        """For wait_until: is `token` accepted now?"""
        async def check():
            return await self.handshake_status(relay, token) == 101
        return check

    async def readyz(self, relay):
        status, _, body = await relay.ahttp_get("/readyz")
        return status, json.loads(body)


class JwksHttpTest(JwksTestCase):
    async def test_rotation_without_a_restart(self):
        server = self.start_jwks()
        relay = await self.start_relay(jwks_config(server.url))
        self.assertGreaterEqual(server.count(200), 1, "no fetch at start")
        await self.assertAccepted(relay, self.k1_token())
        before = await relay.ametrics()
        self.assertGreaterEqual(metric(before, "wsrelay_jwks_refreshes_total", result="ok"), 1)
        self.assertEqual(1, metric(before, "wsrelay_jwks_keys"))

        write_jwks(self.jwks_file, [jwk(self.k2, kid="k2")])
        # The first k2 token may come before the relay has the new set; it triggers the refresh.
        first = await self.handshake_status(relay, self.k2_token())
        self.assertIn(first, (101, (401, "unknown key")))
        token = self.k2_token()
        await wait_until(self.accepted_check(relay, token), timeout=5,
                         what="a k2 token accepted after the rotation")
        await self.assertAccepted(relay, self.k2_token())
        await self.assertRefused(relay, "unknown key", self.k1_token())

        after = await relay.ametrics()
        self.assertGreater(metric(after, "wsrelay_jwks_refreshes_total", result="ok"),
                           metric(before, "wsrelay_jwks_refreshes_total", result="ok"))
        self.assertEqual(1, metric(after, "wsrelay_jwks_keys"))
        self.assertEqual(0, count(after, "wsrelay_jwks_refreshes_total", result="error"))
        self.assertNoTokenLogged(relay)

    async def test_unknown_kids_cannot_make_the_relay_hammer_the_jwks_server(self):
        min_refresh_s = 1.0
        server = self.start_jwks()
        relay = await self.start_relay(jwks_config(
            server.url, {"auth.jwt.jwks_min_refresh_ms": int(min_refresh_s * 1000)}))
        at_start = server.count()
        started = time.monotonic()
        tries = 0
        while time.monotonic() - started < 2.5 * min_refresh_s:
            token = self.tok("RS256", claims(), key=self.k1, kid=secrets.token_hex(4))
            self.assertEqual((401, "unknown key"), await self.handshake_status(relay, token))
            tries += 1
        elapsed = time.monotonic() - started
        fetched = server.count() - at_start
        self.assertGreaterEqual(tries, 20)
        self.assertLessEqual(fetched, int(elapsed / min_refresh_s) + 2,
                             f"{fetched} fetches for {tries} unknown kids in {elapsed:.2f}s")
        # At least one of them did ask for a refresh.
        await asyncio.to_thread(server.wait_requests, at_start + 1, timeout=2 * min_refresh_s)
        # Still serving the real key throughout.
        await self.assertAccepted(relay, self.k1_token())

    async def test_server_down_at_start_then_up(self):
        port = free_port()
        relay = await self.start_relay(jwks_config(f"http://{HOST}:{port}/jwks.json"))
        self.assertEqual((503, {"ready": False, "reason": "signing keys not loaded"}),
                         await self.readyz(relay))
        await self.assertRefused(relay, "signing keys not loaded", self.k1_token(), status=503)
        series = await relay.ametrics()
        self.assertEqual(1, count(series, "wsrelay_auth_failures_total", reason="keys_unavailable"))
        self.assertEqual(0, metric(series, "wsrelay_jwks_keys"))

        server = self.start_jwks(port=port)
        # The relay retries (1 s, doubling) on its own: no handshake needed to bring it up.
        await wait_until(lambda: relay.http_get("/readyz")[0] == 200, timeout=15,
                         what="/readyz 200 once the JWKS server is up")
        self.assertGreaterEqual(server.count(200), 1)
        await self.assertAccepted(relay, self.k1_token())
        series = await relay.ametrics()
        self.assertGreaterEqual(metric(series, "wsrelay_jwks_refreshes_total", result="ok"), 1)
        self.assertGreaterEqual(metric(series, "wsrelay_jwks_refreshes_total", result="error"), 1)
        self.assertEqual(1, metric(series, "wsrelay_jwks_keys"))
        self.assertNoTokenLogged(relay)

    async def test_failing_server_keeps_the_last_good_keys(self):
        server = self.start_jwks()
        relay = await self.start_relay(jwks_config(server.url,
                                                   {"auth.jwt.jwks_refresh_ms": 1000}))
        await self.assertAccepted(relay, self.k1_token())

        server.fail_with(500)
        await asyncio.to_thread(server.wait_requests, 1, status=500, timeout=5)
        await relay.wait_metric(
            lambda s: metric(s, "wsrelay_jwks_refreshes_total", result="error") >= 1,
            what="jwks_refreshes{result=error} >= 1")
        await self.assertAccepted(relay, self.k1_token())
        await self.assertRefused(relay, "unknown key", self.k2_token())
        self.assertEqual(200, (await self.readyz(relay))[0])

        # A 200 with a body that is no JWK Set is a failed refresh too.
        server.fail_with(None)
        write_atomically(self.jwks_file, "this is not a JWK Set {")
        served = server.count(200)
        await asyncio.to_thread(server.wait_requests, served + 1, status=200, timeout=5)
        await relay.wait_metric(
            lambda s: metric(s, "wsrelay_jwks_refreshes_total", result="error") >= 2,
            what="jwks_refreshes{result=error} >= 2")
        await self.assertAccepted(relay, self.k1_token())
        self.assertEqual(1, metric(await relay.ametrics(), "wsrelay_jwks_keys"))

        # Back to normal: the periodic refresh brings k2 in.
        write_jwks(self.jwks_file, [jwk(self.k1, kid="k1"), jwk(self.k2, kid="k2")])
        await wait_until(self.accepted_check(relay, self.k2_token()), timeout=5,
                         what="k2 accepted once the server serves it")
        self.assertEqual(2, metric(await relay.ametrics(), "wsrelay_jwks_keys"))
        self.assertNoTokenLogged(relay)


    async def test_rsa_key_under_2048_bits_is_skipped_and_the_rest_served(self):
        weak = await asyncio.to_thread(new_rsa_key, 1024)
        write_jwks(self.jwks_file, [jwk(weak, kid="weak"), jwk(self.k1, kid="k1")])
        server = self.start_jwks()
        relay = await self.start_relay(jwks_config(server.url))
        line = await asyncio.to_thread(relay.wait_for_log, "key skipped", 5)
        self.assertIn(f"JWKS {server.url}: key skipped: kid \"weak\": RSA key of 1024 bits "
                      "(at least 2048 are required)", line)
        self.assertIn("WARN", line.upper())
        await self.assertAccepted(relay, self.k1_token())
        # Refused like a token of a key the relay never had (here: RS256 keys exist, no "weak").
        await self.assertRefused(relay, "unknown key",
                                 self.tok("RS256", claims(), key=weak, kid="weak"))
        series = await relay.ametrics()
        self.assertEqual(1, metric(series, "wsrelay_jwks_keys"))
        self.assertEqual(1, metric(series, "wsrelay_jwks_skipped_keys"))
        self.assertEqual(0, count(series, "wsrelay_jwks_refreshes_total", result="error"))

        # The unknown kid asked for a refresh: the same set again, not logged again.
        await asyncio.to_thread(server.wait_requests, 2, status=200, timeout=5)
        # The fixed set clears the gauge.
        served = server.count(200)
        write_jwks(self.jwks_file, [jwk(self.k1, kid="k1"), jwk(self.k2, kid="k2")])
        await wait_until(self.accepted_check(relay, self.k2_token()), timeout=5,
                         what="k2 accepted once the set no longer has the weak key")
        self.assertGreater(server.count(200), served)
        series = await relay.ametrics()
        self.assertEqual(2, metric(series, "wsrelay_jwks_keys"))
        self.assertEqual(0, metric(series, "wsrelay_jwks_skipped_keys"))
        self.assertEqual(1, relay.log().count("key skipped"))
        self.assertNoTokenLogged(relay)


    async def test_redirects(self):
        """An http:// URL follows up to 3 redirects, to http:// or https://, never elsewhere. (That
        an https:// URL is only redirected to https:// is a unit test, JwksFetchProtocolsTest: a
        test cannot run a TLS server that the relay's libcurl trusts.)"""
        server = self.start_jwks()
        followed = await self.start_relay(jwks_config(server.redirect_url(3)))
        self.assertEqual(200, (await self.readyz(followed))[0])
        await self.assertAccepted(followed, self.k1_token())
        self.assertEqual(1, metric(await followed.ametrics(), "wsrelay_jwks_keys"))

        refused = [
            (server.redirect_url(4), "Maximum (3) redirects followed"),
            (server.redirect_to(f"file://{self.jwks_file}"), '"file" not supported'),
            # https is allowed from http: followed, and it fails at the TLS handshake (the
            # server speaks plain HTTP), not as a protocol refused.
            (server.redirect_to(f"https://{HOST}:{server.port}/jwks.json"), "SSL"),
        ]
        for url, why in refused:
            with self.subTest(url=url):
                relay = await self.start_relay(jwks_config(url))
                line = await asyncio.to_thread(relay.wait_for_log, why, 5)
                self.assertIn(f"JWKS {url}: ", line)
                self.assertEqual((503, {"ready": False, "reason": "signing keys not loaded"}),
                                 await self.readyz(relay))
                await self.assertRefused(relay, "signing keys not loaded", self.k1_token(),
                                         status=503)
                series = await relay.ametrics()
                self.assertGreaterEqual(
                    count(series, "wsrelay_jwks_refreshes_total", result="error"), 1)
                self.assertEqual(0, count(series, "wsrelay_jwks_refreshes_total", result="ok"))
        self.assertNoTokenLogged(followed)


class JwksFileTest(JwksTestCase):
    async def test_every_key_type_from_a_file_url(self):
        hmac_secret = secrets.token_hex(32)
        write_jwks(self.jwks_file, [
            jwk(self.k1, kid="k1"),
            jwk(KEYS.ec256, kid="e1"),
            jwk(KEYS.ec384, kid="e2"),
            jwk(KEYS.ed25519, kid="o1"),
            jwk(hmac_secret, kid="h1"),
            jwk(self.k1, kid="p1", alg="RS512"),  # the JWK's alg pins the key
            jwk(self.k2, kid="x1", use="enc"),  # not for signatures: skipped
        ])
        relay = await self.start_relay(jwks_config(f"file://{self.jwks_file}"))
        self.assertEqual(200, (await self.readyz(relay))[0])
        accepted = [
            self.tok("RS256", kid="k1"),
            self.tok("ES256", kid="e1"),
            self.tok("ES384", kid="e2"),
            self.tok("EdDSA", kid="o1"),
            self.tok("HS256", key=hmac_secret, kid="h1"),
            self.tok("RS512", kid="p1"),
        ]
        for token in accepted:
            with self.subTest(token=token[:40]):
                await self.assertAccepted(relay, token)
        await self.assertRefused(relay, "algorithm not allowed", self.tok("RS256", kid="p1"))
        await self.assertRefused(relay, "unknown key",
                                 self.tok("RS256", key=self.k2, kid="x1"))
        # A token without kid is tried against every key of its type: here the oct key h1.
        await self.assertRefused(relay, "bad signature", self.tok("HS256"))
        series = await relay.ametrics()
        self.assertEqual(6, metric(series, "wsrelay_jwks_keys"))
        self.assertEqual(1, metric(series, "wsrelay_jwks_skipped_keys"))
        self.assertIn('key skipped: kid "x1": "use" is not "sig"', relay.log())
        self.assertNoTokenLogged(relay)

    async def test_file_rotation_on_unknown_kid(self):
        relay = await self.start_relay(jwks_config(f"file://{self.jwks_file}"))
        await self.assertAccepted(relay, self.k1_token())
        ok_before = metric(await relay.ametrics(), "wsrelay_jwks_refreshes_total", result="ok")
        write_jwks(self.jwks_file, [jwk(self.k2, kid="k2")])
        await wait_until(self.accepted_check(relay, self.k2_token()), timeout=5,
                         what="a k2 token accepted after rewriting the file")
        await self.assertRefused(relay, "unknown key", self.k1_token())
        self.assertGreater(metric(await relay.ametrics(), "wsrelay_jwks_refreshes_total",
                                  result="ok"), ok_before)

    async def test_file_that_cannot_be_loaded_stops_startup(self):
        relay = Relay(jwks_config(f"file://{KEYS.path('no-such-jwks.json')}"), check_exit=False,
                      ready_timeout=10)
        try:
            with self.assertRaises(RelayError):
                await asyncio.to_thread(relay.start)
            self.assertIsNotNone(relay.returncode)
            self.assertNotEqual(0, relay.returncode, relay.log())
        finally:
            await asyncio.to_thread(relay.close)


if __name__ == "__main__":
    unittest.main()
