"""CA files for the relay's own HTTPS clients: hook.ca_file for an https:// hook and
auth.jwt.jwks_ca_file for an https:// JWKS, both against servers whose certificate is signed by the
test CA (tests/tls/make_certs.sh), which the system does not trust: refused without the file,
working with it."""

import json
import ssl
import threading
import unittest
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import test_auth_jwks
from relay_harness import HOST, RelayTestCase, metric, wait_until
from tls_pki import pki_path


class HttpsHook:
    """An https hook app in a thread of the test: answers every event with {} (allowed) and
    records the event names."""

    def __init__(self):
        events = self.events = []

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or "0"))
                events.append(json.loads(body).get("event"))
                out = b"{}"
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *_):
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.server.daemon_threads = True
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki_path("server.crt"), pki_path("server.key"))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"https://{HOST}:{self.server.server_address[1]}/ws-hook"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


class HookCaFileTest(RelayTestCase):
    def setUp(self):
        super().setUp()
        self.hook = HttpsHook()
        self.addCleanup(self.hook.stop)

    def hook_config(self, **extra):
        config = {"hook.url": self.hook.url, "hook.events": ["connect"], "hook.retries": 0}
        config.update(extra)
        return config

    async def test_https_hook_needs_the_ca_file(self):
        relay = await self.start_relay(self.hook_config())
        status, _, body = await relay.ahttp_upgrade("/ws")
        self.assertEqual(503, status, body)
        self.assertEqual([], self.hook.events, "the certificate was not checked")

        relay = await self.start_relay(self.hook_config(**{"hook.ca_file": pki_path("ca.crt")}))
        status, _, body = await relay.ahttp_upgrade("/ws")
        self.assertEqual(101, status, body)
        self.assertEqual(["connect"], self.hook.events)

    async def test_a_ca_that_did_not_sign_it_is_refused(self):
        relay = await self.start_relay(
            self.hook_config(**{"hook.ca_file": pki_path("other-ca.crt")}))
        status, _, _ = await relay.ahttp_upgrade("/ws")
        self.assertEqual(503, status)
        self.assertEqual([], self.hook.events)


class JwksCaFileTest(test_auth_jwks.JwksTestCase):
    def start_https_jwks(self):
        server = test_auth_jwks.JwksServer(
            self.jwks_file, tls=(pki_path("server.crt"), pki_path("server.key"))).start()
        self.addCleanup(server.stop)
        return server

    async def test_https_jwks_needs_the_ca_file(self):
        server = self.start_https_jwks()
        self.assertTrue(server.url.startswith("https://"))
        relay = await self.start_relay(test_auth_jwks.jwks_config(server.url))
        await relay.wait_metric(
            lambda s: metric(s, "wsrelay_jwks_refreshes_total", result="error") >= 1,
            what="a failed https fetch")
        status, body = await self.readyz(relay)
        self.assertEqual(503, status, body)
        self.assertEqual(0, server.count(), "the certificate was not checked")

        relay = await self.start_relay(test_auth_jwks.jwks_config(
            server.url, {"auth.jwt.jwks_ca_file": pki_path("ca.crt")}))
        await wait_until(lambda: server.count(200) >= 1, what="an https fetch")
        await self.assertAccepted(relay, self.k1_token())
        status, body = await self.readyz(relay)
        self.assertEqual(200, status, body)


if __name__ == "__main__":
    unittest.main()
